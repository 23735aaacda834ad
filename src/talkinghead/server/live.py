"""Live avatars over a WebSocket, ``/v1/live``: speech in as it is spoken, and back, as soon as
each is ready, the frames of a portrait speaking it, or only the motion that drives them.

One session per connection; options as query parameters, by the names of ``GET /v1/options``
(``/v1/live?size=256&pose_style=3``), plus ``sample_rate`` for speech at another rate than
16 kHz (8000..96000 Hz, resampled here) and ``output``: ``video`` (the default) or ``motion``.

1. ``video``: client → one binary message, the portrait (JPEG, PNG, ...); server → text
   ``{"type": "ready", "width", "height", "fps", "sample_rate"}``.
   ``motion``: no portrait; server → text ``{"type": "ready", "channels", "fps", "sample_rate"}``.
2. client → binary messages: speech as mono signed 16-bit little-endian PCM, any length;
   server → per frame, in order, as soon as it is ready (``stream.Stream`` with the live motion
   source: at most 0.12 s of look-ahead): ``video``, one binary message, a JPEG; ``motion``, one
   text message ``{"type": "frame", "index", "time", "expression": {channel: weight},
   "pose": {"pitch", "yaw", "roll" (radians), "x", "y", "z" (inter-ocular distances)},
   "blink"}``, as in ``--export-motion`` files.
3. client → text ``{"type": "end"}``: the server sends the last frames, then text
   ``{"type": "done", "frames": N}``, and closes.

Errors: text ``{"type": "error", "error": {"code", "message"}}``, then the server closes the
connection (1008 for input the client can fix, 1013 when every live session is taken, 1011 for a
bug), or after ``IDLE_S`` without a message. Sessions run in the server's own threads, at most
``max_live`` at once.
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

from talkinghead.config import Config
from talkinghead.errors import UserError
from talkinghead.face.model import CHANNELS
from talkinghead.media import load_image
from talkinghead.motion.io import POSE_FIELDS
from talkinghead.motion.live import LiveMotion
from talkinghead.motion.track import num_frames_for
from talkinghead.stream import SAMPLE_RATE, Stream, check_plan, to_16k
from talkinghead.types import MotionTrack

from .limits import LimitError, Limits, check_image, checked_config

log = logging.getLogger(__name__)
JPEG_QUALITY = 90
IDLE_S = 30.0  # a session that sends nothing for this long is closed (it holds a slot)
RATES = (8000, 96000)  # Hz, the speech's sample rates a client may choose
OUTPUTS = ("video", "motion")
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
    session = None
    try:
        query = dict(ws.query_params)
        rate = _sample_rate(query.pop("sample_rate", str(SAMPLE_RATE)))
        output = _output(query.pop("output", "video"))
        config = checked_config(query, limits)
        if output == "video":
            stream = await run_in_threadpool(Stream, await _portrait(ws, limits), config, rate)
            session = VideoSession(stream)
        else:
            session = MotionSession(config, rate)
        await ws.send_json({"type": "ready", **session.describe(), "sample_rate": rate})
        await _converse(ws, session, limits, rate)
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
        if session is not None:
            session.close()


class VideoSession:
    """Speech → the portrait's frames as JPEGs (``stream.Stream``, live motion)."""

    def __init__(self, stream: Stream):
        self.stream = stream

    def describe(self) -> dict:
        width, height = self.stream.size
        return {"width": width, "height": height, "fps": self.stream.fps}

    def feed(self, samples: np.ndarray) -> list[bytes]:
        return [_jpeg(f.pixels) for f in self.stream.feed(samples)]

    def finish(self) -> list[bytes]:
        return [_jpeg(f.pixels) for f in self.stream.finish()]

    @property
    def frames(self) -> int:
        return self.stream.next_frame

    def close(self) -> None:
        self.stream.close()


class MotionSession:
    """Speech → motion coefficients only, for a client that drives an avatar of its own: the
    live motion source alone, no portrait and no rendering."""

    def __init__(self, config: Config, sample_rate: int):
        check_plan(config, "live")
        self.motion = LiveMotion(CHANNELS, config)
        self.fps, self.sample_rate = config.video.fps, sample_rate
        self.received, self.frames = 0, 0

    def describe(self) -> dict:
        return {"channels": list(CHANNELS), "fps": self.fps}

    def feed(self, samples: np.ndarray) -> list[dict]:
        self.received += len(samples)
        return self._messages(self.motion.feed(to_16k(samples, self.sample_rate)))

    def finish(self) -> list[dict]:
        total = num_frames_for(self.received / self.sample_rate, self.fps)
        return self._messages(self.motion.finish(total))

    def close(self) -> None:
        pass

    def _messages(self, blocks: list[MotionTrack]) -> list[dict]:
        out = []
        for block in blocks:
            for i in range(block.num_frames):
                out.append({"type": "frame", "index": self.frames,
                            "time": round((self.frames + 0.5) / self.fps, 4),
                            "expression": {c: round(float(v), 4)
                                           for c, v in zip(block.channels, block.expression[i])},
                            "pose": {f: round(float(v), 5) for f, v in zip(POSE_FIELDS, block.pose[i])},
                            "blink": round(float(block.blink[i]), 4)})
                self.frames += 1
        return out


async def _converse(ws: WebSocket, session: VideoSession | MotionSession, limits: Limits,
                    rate: int) -> None:
    """Speech in, frames out, until the client's ``end`` (or it goes away)."""
    pcm = PcmBuffer(rate)
    while True:
        message = await _receive(ws)
        if message.get("bytes") is not None:
            samples = pcm.push(message["bytes"])
            if pcm.seconds > limits.max_live_seconds:
                raise LimitError(413, "too_long", f"a live session takes at most "
                                 f"{limits.max_live_seconds:g} s of speech")
            await _send(ws, await run_in_threadpool(session.feed, samples))
        elif _is_end(message.get("text")):
            await _send(ws, await run_in_threadpool(session.finish))
            await ws.send_json({"type": "done", "frames": session.frames})
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


def _output(text: str) -> str:
    """The ``output`` query parameter; ``LimitError`` for another than OUTPUTS."""
    if text not in OUTPUTS:
        raise LimitError(422, "bad_option", f"output must be one of {', '.join(OUTPUTS)}, got {text!r}")
    return text


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
                     "binary messages (mono 16-bit PCM)")


def _jpeg(pixels: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB → JPEG bytes."""
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


async def _send(ws: WebSocket, frames: list[bytes] | list[dict]) -> None:
    for frame in frames:
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_json(frame))


async def _fail(ws: WebSocket, code: int, error: str, message: str) -> None:
    """Tell the client what went wrong, then close (quietly, if it has already gone)."""
    try:
        await ws.send_json({"type": "error", "error": {"code": error, "message": message}})
        await ws.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass
