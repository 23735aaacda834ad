"""Run a frame generator one step ahead in a background thread.

Rendering (NumPy, OpenCV) and encoding (PyAV/x264) both release the GIL, so a producer thread
that renders while the caller encodes uses two cores. Order is kept: the output is identical
to iterating the generator directly.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
POLL_S = 0.1


class Prefetch(Generic[T]):
    """Iterate ``source`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    ``busy``: seconds the thread spent producing items (the render time). Use as a context
    manager, or call ``close`` so that an abandoned producer stops.
    """

    def __init__(self, source: Iterable[T], depth: int = 3):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.busy = 0.0
        self._thread = threading.Thread(target=self._produce, args=(iter(source),), daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer and wait for it."""
        self._stop.set()
        self._thread.join()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                self.busy += time.perf_counter() - t
                self._put(item)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(_Failure(exc))
            return
        self._put(_DONE)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue


class _Failure:
    """An exception raised by the producer, carried to the consumer."""

    def __init__(self, error: Exception):
        self.error = error
