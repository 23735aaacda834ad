"""What one request may ask of the server, and the checks that refuse more (with 4xx errors).

Every check raises ``LimitError`` carrying the HTTP status and a message that says what to change.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from talkinghead.config import Config
from talkinghead.media import MAX_IMAGE_PIXELS

from .options import OptionError, apply_options

MIB = 1024 * 1024


class LimitError(Exception):
    """A request exceeds a limit or is malformed; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Limits:
    """Server limits. Bytes for uploads, pixels for the photo, seconds for speech; ``max_queued``:
    jobs waiting for a worker (running jobs are bounded by the worker count); ``max_size``: the
    largest ``size`` option; ``job_timeout_s``: a job running longer is stopped;
    ``max_live_seconds``: speech one live session (``/v1/live``) may send."""

    max_upload_bytes: int = 25 * MIB
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_audio_seconds: float = 120.0
    max_text_chars: int = 2000
    max_queued: int = 16
    max_size: int = 1024
    job_timeout_s: float = 1800.0
    max_live_seconds: float = 600.0

    def describe(self) -> dict[str, float]:
        """JSON-ready view (the web page shows it)."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_image_pixels": self.max_image_pixels,
                "max_audio_seconds": self.max_audio_seconds, "max_text_chars": self.max_text_chars,
                "max_queued": self.max_queued, "max_size": self.max_size,
                "max_live_seconds": self.max_live_seconds}


def check_image(path: Path, limits: Limits) -> tuple[int, int]:
    """(width, height) of the uploaded photo, read from its header only (no pixel decoding).

    422 when it is not an image Pillow knows, 413 when it has more pixels than allowed.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as exc:
        raise LimitError(422, "bad_image", f"the image could not be read ({exc.__class__.__name__}); "
                         "upload a JPEG or PNG photo") from exc
    if width * height > limits.max_image_pixels:
        raise LimitError(413, "image_too_large",
                         f"the image has {width}x{height} = {width * height:,} pixels; the limit is "
                         f"{limits.max_image_pixels:,}. Downscale it and try again.")
    return width, height


def check_audio(path: Path, limits: Limits) -> float:
    """Seconds of speech in the uploaded audio; 422 when unreadable or too long."""
    from talkinghead.errors import AudioError
    from talkinghead.media import load_audio

    try:
        seconds = load_audio(path).duration
    except AudioError as exc:
        raise LimitError(422, "bad_audio", _without_path(str(exc), path)) from exc
    check_seconds(seconds, limits)
    return seconds


def check_seconds(seconds: float, limits: Limits) -> None:
    """422 when ``seconds`` of speech exceed the limit."""
    if seconds > limits.max_audio_seconds:
        raise LimitError(422, "audio_too_long",
                         f"the speech lasts {seconds:.1f} s; the limit is "
                         f"{limits.max_audio_seconds:g} s. Shorten it and try again.")


def check_text(text: str, limits: Limits) -> str:
    """The text to speak, stripped; 422 when empty or too long."""
    text = text.strip()
    if not text:
        raise LimitError(422, "empty_text", "the text is empty; type what the portrait should say")
    if len(text) > limits.max_text_chars:
        raise LimitError(422, "text_too_long", f"the text has {len(text)} characters; the limit is "
                         f"{limits.max_text_chars}")
    return text


def check_size(size: int | None, limits: Limits) -> None:
    """422 when the requested output side exceeds the server's limit."""
    if size is not None and not 16 <= size <= limits.max_size:
        raise LimitError(422, "bad_size", f"size must be within 16..{limits.max_size}, got {size}")


def checked_config(raw: Mapping[str, str], limits: Limits) -> Config:
    """The Config that a request's options (name → text; no file paths) ask for: 422 for an
    unknown or invalid one, or a size beyond the limit."""
    try:
        config = apply_options(Config(), raw, allow_paths=False)
    except OptionError as exc:
        raise LimitError(422, "bad_option", str(exc)) from exc
    check_size(config.face.size, limits)
    return config


def _without_path(message: str, path: Path) -> str:
    """A pipeline message with the server's internal file path taken out."""
    return message.replace(str(path), "the upload")
