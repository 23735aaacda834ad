"""Errors a user can act on. Each message says what went wrong and what to do.

Exit codes (cli): 0 success, 2 bad input or usage (a ``UserError``), 3 internal error (any other
exception: a bug, reported with a request to file it), 130 interrupted, 143 terminated.
"""
from __future__ import annotations


class TalkingHeadError(Exception):
    """Base of every error talkinghead raises on purpose."""

    exit_code = 3


class UserError(TalkingHeadError):
    """The input or the request is at fault; the user can fix it."""

    exit_code = 2


class ImageError(UserError):
    """The image cannot be read, is corrupt, or is too large."""


class NoFaceError(UserError):
    """No face was found in the image."""


class AudioError(UserError):
    """The audio cannot be read, is empty, or holds no samples."""


class OutputError(UserError):
    """The output cannot be written where asked."""


class MotionFileError(UserError):
    """A motion file is malformed or does not fit the request."""


class CheckpointError(UserError):
    """A checkpoint folder or file is missing or does not match the expected networks."""
