"""Silence what native libraries write straight to the process's standard error."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 — where native code writes (MediaPipe's C++ logging, libtiff),
    whatever ``sys.stderr`` is — at the null device meanwhile. Python's own buffered stderr is
    flushed first, so that nothing of it is lost; without a descriptor 2, nothing changes."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        kept = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(kept, 2)
        os.close(kept)
