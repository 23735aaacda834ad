"""Live avatars over a WebSocket, ``/v1/live``: a portrait, then speech as it is spoken, and the
frames back as soon as each is ready.

One session per connection; options as query parameters, by the names of ``GET /v1/options``
(``/v1/live?size=256&pose_style=3``), and ``sample_rate`` for speech at another rate than 16 kHz
(8000..96000 Hz, resampled here):

1. client → one binary message: the portrait (JPEG, PNG, ...).
2. server → text ``{"type": "ready", "width", "height", "fps", "sample_rate"}``.
3. client → binary messages: speech as mono signed 16-bit little-endian PCM, any length;
   server → one binary message per frame, a JPEG, in order, each as soon as it is rendered
   (``stream.Stream`` with the live motion source: at most 0.12 s of look-ahead).
4. client → text ``{"type": "end"}``: the server sends the last frames, then text
   ``{"type": "done", "frames": N}``, and closes.

Errors: text ``{"type": "error", "error": {"code", "message"}}``, then the server closes the
connection (1008 for input the client can fix, 1013 when every live session is taken, 1011 for a
bug), or after ``IDLE_S`` without a message. Sessions render in the server's own threads, at
most ``max_live`` at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from talkinghead.errors import UserError
from talkinghead.media import load_image
from talkinghead.stream import SAMPLE_RATE, Stream, StreamFrame

from .limits import LimitError, Limits, check_image, checked_config

log = logging.getLogger(__name__)
JPEG_QUALITY = 90
IDLE_S = 30.0  # a session that sends nothing for this long is closed (it holds a slot)
RATES = (8000, 96000)  # Hz, the speech's sample rates a client may choose
CLOSE_INVALID, CLOSE_BUG, CLOSE_BUSY = 1008, 1011, 1013


class LiveSessions:
    """At most ``limit`` live sessions at once."""

    def __init__(self, limit: int):
        self.limit, self.active = limit, 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1


async def live_session(ws: WebSocket, limits: Limits, sessions: LiveSessions) -> None:
    """Serve one ``/v1/live`` connection (see the module)."""
    await ws.accept()
    if not sessions.acquire():
        return await _fail(ws, CLOSE_BUSY, "busy", f"all {sessions.limit} live sessions are in use; "
                           "try again later")
    stream = None
    try:
        query = dict(ws.query_params)
        rate = _sample_rate(query.pop("sample_rate", str(SAMPLE_RATE)))
        config = checked_config(query, limits)
        stream = await run_in_threadpool(Stream, await _portrait(ws, limits), config, rate)
        width, height = stream.size
        await ws.send_json({"type": "ready", "width": width, "height": height,
                            "fps": stream.fps, "sample_rate": rate})
        await _converse(ws, stream, limits)
    except WebSocketDisconnect:
        pass
    except LimitError as exc:
        await _fail(ws, CLOSE_INVALID, exc.code, exc.message)
    except UserError as exc:
        await _fail(ws, CLOSE_INVALID, "bad_input", str(exc))
    except Exception:
        log.exception("live session failed")
        await _fail(ws, CLOSE_BUG, "internal", "the live session failed inside (a bug); see the "
                    "server's log")
    finally:
        sessions.release()
        if stream is not None:
            stream.close()


async def _converse(ws: WebSocket, stream: Stream, limits: Limits) -> None:
    """Speech in, frames out, until the client's ``end`` (or it goes away)."""
    pcm = PcmBuffer(stream.sample_rate)
    while True:
        message = await _receive(ws)
        if message.get("bytes") is not None:
            samples = pcm.push(message["bytes"])
            if pcm.seconds > limits.max_live_seconds:
                raise LimitError(413, "too_long", f"a live session takes at most "
                                 f"{limits.max_live_seconds:g} s of speech")
            await _send_frames(ws, await run_in_threadpool(_jpegs, stream.feed, samples))
        elif _is_end(message.get("text")):
            frames = await run_in_threadpool(_jpegs, stream.finish)
            await _send_frames(ws, frames)
            await ws.send_json({"type": "done", "frames": stream.next_frame})
            return await ws.close()


class PcmBuffer:
    """Signed 16-bit little-endian bytes in messages of any length → float32 samples; an odd
    byte waits for the next message."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self.carry, self.samples = b"", 0

    def push(self, data: bytes) -> np.ndarray:
        data = self.carry + data
        whole = len(data) // 2 * 2
        self.carry = data[whole:]
        samples = np.frombuffer(data[:whole], "<i2").astype(np.float32) / 32768.0
        self.samples += len(samples)
        return samples

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


def _sample_rate(text: str) -> int:
    """The ``sample_rate`` query parameter → Hz; ``LimitError`` outside RATES."""
    try:
        rate = int(text)
    except ValueError:
        rate = 0
    if not RATES[0] <= rate <= RATES[1]:
        raise LimitError(422, "bad_option", f"sample_rate must be a whole number of Hz from "
                         f"{RATES[0]} to {RATES[1]}, got {text!r}")
    return rate


async def _portrait(ws: WebSocket, limits: Limits):
    """The first message, a photo → ``Portrait`` (checked as an upload is)."""
    data = (await _receive(ws)).get("bytes")
    if not data:
        raise LimitError(422, "missing_image", "send the portrait photo first, as one binary message")
    if len(data) > limits.max_upload_bytes:
        raise LimitError(413, "too_large", f"the photo is over {limits.max_upload_bytes} bytes")
    with tempfile.TemporaryDirectory(prefix="talkinghead-live-") as folder:
        path = Path(folder) / "portrait"
        path.write_bytes(data)
        check_image(path, limits)
        return await run_in_threadpool(load_image, path)


async def _receive(ws: WebSocket) -> dict:
    """The next message; ``WebSocketDisconnect`` when the client has gone, ``LimitError`` when
    it has sent nothing for IDLE_S."""
    try:
        message = await asyncio.wait_for(ws.receive(), IDLE_S)
    except asyncio.TimeoutError:
        raise LimitError(408, "idle", f"nothing was sent for {IDLE_S:g} s; the session is closed") \
            from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def _is_end(text: str | None) -> bool:
    """Whether a text message is ``{"type": "end"}``; ``LimitError`` for anything else."""
    try:
        if json.loads(text or "null").get("type") == "end":
            return True
    except (ValueError, AttributeError):
        pass
    raise LimitError(422, "bad_message", 'text messages must be {"type": "end"}; speech goes in '
                     "binary messages (16 kHz mono 16-bit PCM)")


def _jpegs(step, *args) -> list[bytes]:
    """The frames of ``step(*args)`` (``Stream.feed`` or ``finish``), JPEG-encoded."""
    frames: list[StreamFrame] = step(*args)
    return [cv2.imencode(".jpg", cv2.cvtColor(f.pixels, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes() for f in frames]


async def _send_frames(ws: WebSocket, frames: list[bytes]) -> None:
    for jpeg in frames:
        await ws.send_bytes(jpeg)


async def _fail(ws: WebSocket, code: int, error: str, message: str) -> None:
    """Tell the client what went wrong, then close (quietly, if it has already gone)."""
    try:
        await ws.send_json({"type": "error", "error": {"code": error, "message": message}})
        await ws.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass
