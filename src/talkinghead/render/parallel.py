"""OpenCV's own thread pool, cut to one thread while frames render on threads of ours."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

_lock = threading.Lock()
_users = 0
_saved = 1


@contextmanager
def opencv_serial() -> Iterator[None]:
    """Within this block (in any thread, nested or concurrent), OpenCV runs each call on the
    calling thread only; the count it had before returns when the last block ends. Two render
    threads already fill two cores: OpenCV's pool on top of them split every small remap and
    blur among threads that were busy, and cost 4-10 % more CPU (futex waits, in system time)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                cv2.setNumThreads(_saved)
