"""The animation loop: audio arrives in chunks, motion is planned from it, frames leave.

``Stream`` fits the face once; then each chunk of mono audio (16 kHz float32; other rates are
resampled) goes to a motion source, and every frame whose motion is ready is rendered. Every
video that talkinghead's embedded backend makes goes through this loop; the sources differ in
how far they look ahead:

* ``live`` (``motion.live.LiveMotion``, ``talkinghead stream``'s default): causal and
  loudness-driven; frame k (time t_k = (k + 0.5) / fps) is emitted as soon as audio up to
  t_k + 0.1 s has been fed: at most 0.12 s of look-ahead at 25 fps, plus the chunk size of the
  source and the render time (~10 ms at 512²);
* ``phrase`` (``segments.PhraseMotion``, the file pipeline's, and ``stream --plan phrase``):
  recognized phones with coarticulation, planned piece by piece as each phrase is recognized —
  frames follow the audio by one piece (at most 6 s at first, then 20 s), and lip-sync better;
* ``PlannedMotion``: a track planned from the whole recording beforehand (a motion file, a
  transcript, reference videos, free view), released as its audio arrives.

Push (``feed`` / ``finish``, for a live source) or pull (``frames``, for a file: the source
hears in a background thread, ahead of rendering, so that recognition and rendering use both
cores). Same portrait, audio, config and seed → identical frames, whatever the chunk sizes.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Protocol

import numpy as np

from .audio.dsp import resample_poly
from .config import Config
from .errors import UserError
from .face.crop import Framing, plan_framing
from .face.landmarks import find_upright_face
from .face.model import fit_framed
from .media import VideoWriter, check_output_path, load_audio
from .motion.live import LOOKAHEAD_S, LiveMotion
from .motion.track import num_frames_for
from .render.parallel import opencv_serial
from .render.prefetch import Prefetch
from .render.renderer import Renderer
from .segments import PhraseMotion
from .types import FaceFit, MotionTrack, Portrait, Waveform

SAMPLE_RATE = 16000
MOTION_BLOCKS_AHEAD = 1000  # motion blocks (a few kB each) heard ahead of rendering
FIRST_FRAME_WAIT_S = 5.0  # hearing pauses after a first full block until the first frame is out
RENDER_THREADS = 2  # when the animated window is at least WINDOW_SHARE of the frame, else 1
WINDOW_SHARE = 0.5   # (in full mode the encoder of the larger frame is the bottleneck)
PLANS = ("live", "phrase")

__all__ = ["LOOKAHEAD_S", "SAMPLE_RATE", "MotionSource", "PlannedMotion", "Stream",
           "StreamFrame", "pcm_chunks", "stream_to_file", "write_frames"]


@dataclass(frozen=True)
class StreamFrame:
    """One emitted frame. ``index``: frame number from 0; ``time``: its centre, seconds of
    audio; ``pixels``: (H, W, 3) uint8 RGB; ``audio_seen``: seconds of audio fed when its
    motion was planned (``audio_seen - time`` is the look-ahead it used); ``expression``: (C,)
    float32 weights of ``Stream.channels`` and ``pose``: (6,) as ``MotionTrack.pose`` (to drive
    another renderer)."""

    index: int
    time: float
    pixels: np.ndarray
    audio_seen: float
    expression: np.ndarray
    pose: np.ndarray


class MotionSource(Protocol):
    """Audio in, consecutive blocks of motion out, in order."""

    def feed(self, samples: np.ndarray) -> list[MotionTrack]:
        """(n,) float32 samples at 16 kHz → the blocks now planned (possibly none)."""
        ...

    def finish(self, num_frames: int) -> list[MotionTrack]:
        """The remaining blocks, once the audio has ended; ``num_frames``: the frames the
        audio calls for (``num_frames_for`` its duration)."""
        ...


class PlannedMotion:
    """Motion source for a track planned beforehand: frame k is released once the audio of its
    centre time has arrived; ``finish`` releases the rest (the track keeps its own length)."""

    def __init__(self, track: MotionTrack):
        self.track, self.next_frame, self.received = track, 0, 0

    def feed(self, samples: np.ndarray) -> list[MotionTrack]:
        self.received += len(samples)
        ready = int(np.floor(self.received / SAMPLE_RATE * self.track.fps - 0.5)) + 1
        return self._release(min(max(ready, 0), self.track.num_frames))

    def finish(self, num_frames: int) -> list[MotionTrack]:
        return self._release(self.track.num_frames)

    def _release(self, stop: int) -> list[MotionTrack]:
        if stop <= self.next_frame:
            return []
        rows, t = slice(self.next_frame, stop), self.track
        self.next_frame = stop
        return [MotionTrack(fps=t.fps, channels=t.channels, expression=t.expression[rows],
                            pose=t.pose[rows], blink=t.blink[rows], meta=t.meta)]


class Stream:
    """Portrait + audio chunks → frames, through a motion source (see the module)."""

    def __init__(self, portrait: Portrait | None = None, config: Config | None = None,
                 sample_rate: int = SAMPLE_RATE, face: tuple[Framing, FaceFit] | None = None,
                 motion: str | MotionSource = "live", duration: float | None = None):
        """``face``: the framing and fit of an earlier ``Stream`` of the same portrait and
        config (``stream.face``), to skip detection and fitting. ``motion``: ``"live"``,
        ``"phrase"`` or a ``MotionSource``. ``duration``: the audio's length in seconds when
        known beforehand (a file)."""
        self.config = cfg = config or Config()
        self.fps = cfg.video.fps
        self.sample_rate = sample_rate
        self.framing, fit = face or fit_portrait(portrait, cfg)[:2]
        self.face = (self.framing, fit)
        self.renderer = Renderer(self.framing, fit)
        self.channels = fit.channels
        self.motion = _source(motion, fit.channels, cfg, duration)
        self.received = 0      # samples fed so far, at ``sample_rate``
        self.next_frame = 0
        x0, y0, x1, y1 = self.framing.roi
        share = (x1 - x0) * (y1 - y0) / (self.size[0] * self.size[1])
        self.render_threads = RENDER_THREADS if share >= WINDOW_SHARE else 1
        self._pool = ThreadPoolExecutor(self.render_threads, thread_name_prefix="render")
        self.render_seconds = 0.0  # busy time of the render threads, added up
        self._clock = threading.Lock()
        self._first_frame = threading.Event()

    def close(self) -> None:
        """Let the render threads go (a finished stream renders nothing more)."""
        self._pool.shutdown(wait=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.framing.image.shape[1], self.framing.image.shape[0]

    def feed(self, samples: np.ndarray) -> list[StreamFrame]:
        """Add (N,) mono float32 samples in [-1, 1] at ``sample_rate``; the frames now ready."""
        return list(self._render(self._hear(samples)))

    def finish(self, duration: float | None = None) -> list[StreamFrame]:
        """The remaining frames up to the end of the audio (``duration`` s: its exact length,
        when known)."""
        return list(self._render(self._hear_end(duration)))

    def frames(self, chunks: Iterable[np.ndarray], duration: float | None = None
               ) -> Iterator[StreamFrame]:
        """Every frame for a whole sequence of audio chunks (then ``finish``). The chunks are
        heard in a background thread, up to ``MOTION_BLOCKS_AHEAD`` blocks ahead of rendering,
        except that after a first block that fills the render threads it waits until the first
        frame is out: phone recognition holds the GIL (PocketSphinx decodes a piece in one call,
        ~0.7 s for 20 s of speech) and would hold the first frame back that long. Meanwhile, when
        several render threads keep the cores busy, OpenCV's own pool is cut to one thread
        (``feed`` renders a frame or two at a time, for latency, and keeps it)."""
        def heard() -> Iterator[tuple[MotionTrack, float]]:
            for chunk in chunks:
                for block, seen in self._hear(chunk):
                    yield block, seen
                    if block.num_frames > self.render_threads:
                        self._first_frame.wait(FIRST_FRAME_WAIT_S)
            yield from self._hear_end(duration)

        serial = opencv_serial() if self.render_threads > 1 else nullcontext()
        with Prefetch(heard(), depth=MOTION_BLOCKS_AHEAD) as blocks, serial:
            yield from self._render(blocks)

    def _hear(self, samples: np.ndarray) -> list[tuple[MotionTrack, float]]:
        chunk = np.asarray(samples, np.float32).reshape(-1)
        self.received += len(chunk)
        seen = self.received / self.sample_rate
        return [(b, seen) for b in self.motion.feed(self._to_16k(chunk))]

    def _hear_end(self, duration: float | None) -> list[tuple[MotionTrack, float]]:
        seen = self.received / self.sample_rate
        total = num_frames_for(seen if duration is None else duration, self.fps)
        return [(b, seen) for b in self.motion.finish(total)]

    def _to_16k(self, x: np.ndarray) -> np.ndarray:
        return to_16k(x, self.sample_rate)

    def _render(self, blocks: Iterable[tuple[MotionTrack, float]]) -> Iterator[StreamFrame]:
        """The frames of ``blocks``, in order; ``render_threads`` render consecutive frames at
        once (``Renderer.render`` keeps no state; NumPy and OpenCV release the GIL)."""
        pending: deque[tuple[Future, MotionTrack, int, float]] = deque()
        for block, seen in blocks:
            for i in range(block.num_frames):
                pending.append((self._pool.submit(self._render_one, block, i), block, i, seen))
                if len(pending) > self.render_threads:
                    yield self._frame(*pending.popleft())
        while pending:
            yield self._frame(*pending.popleft())

    def _render_one(self, block: MotionTrack, i: int) -> np.ndarray:
        t = time.perf_counter()
        pixels = self.renderer.render(block.expression[i], block.pose[i], float(block.blink[i]))
        with self._clock:
            self.render_seconds += time.perf_counter() - t
        return pixels

    def _frame(self, job: Future, block: MotionTrack, i: int, seen: float) -> StreamFrame:
        k = self.next_frame
        self.next_frame += 1
        pixels = job.result()
        self._first_frame.set()
        return StreamFrame(k, (k + 0.5) / self.fps, pixels, seen, block.expression[i],
                           block.pose[i])


def to_16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n,) float32 samples at ``sample_rate`` → at 16 kHz (one chunk at a time: fine for live
    use, where chunks are tens of milliseconds)."""
    if sample_rate == SAMPLE_RATE:
        return x
    g = gcd(sample_rate, SAMPLE_RATE)
    return resample_poly(x, SAMPLE_RATE // g, sample_rate // g).astype(np.float32)


def check_plan(config: Config, plan: str) -> None:
    """``UserError`` naming the options that a ``plan`` motion source (``live``, ``phrase``)
    cannot apply, those that need the whole recording (a transcript, reference videos, free
    view), rather than leaving them unapplied without a word."""
    whole = config.whole_recording_options()
    if whole:
        raise UserError(f"a {plan} stream cannot apply {', '.join(whole)}: they need the whole "
                        "recording; use talkinghead generate")


def _source(motion: str | MotionSource, channels: tuple[str, ...], config: Config,
            duration: float | None) -> MotionSource:
    if isinstance(motion, str):
        check_plan(config, motion)
    if motion == "live":
        return LiveMotion(channels, config)
    if motion == "phrase":
        return PhraseMotion(channels, config, duration)
    if isinstance(motion, str):
        raise ValueError(f"motion must be one of {PLANS} or a MotionSource, got {motion!r}")
    return motion


def fit_portrait(portrait: Portrait, cfg: Config) -> tuple[Framing, FaceFit, int]:
    """Find (upright), frame and fit the face once → framing, fit, faces in the photo."""
    pixels, mesh, num_faces = find_upright_face(portrait.pixels, cfg.face.face_index)
    framing = plan_framing(pixels, mesh, cfg.face.preprocess, cfg.face.size)
    return framing, fit_framed(framing, mesh), num_faces


def write_frames(frames: Iterable[np.ndarray], output: Path, size: tuple[int, int],
                 speech: Waveform | None, config: Config,
                 on_frame: Callable[[int], None] | None = None) -> tuple[int, float]:
    """Render ``frames`` ((H, W, 3) uint8, ``size`` = (W, H)) in a background thread while this
    one encodes them, with ``speech`` muxed in, into ``output`` (written atomically).
    ``on_frame(count)`` after each frame. Returns (frames written, seconds spent encoding)."""
    v = config.video
    count, encode = 0, 0.0
    with VideoWriter(output, size[0], size[1], v.fps, speech, v.crf, v.preset) as writer, \
            Prefetch(frames) as rendered:
        for pixels in rendered:
            t = time.perf_counter()
            writer.write(pixels)
            encode += time.perf_counter() - t
            count += 1
            if on_frame:
                on_frame(count)
    return count, encode


def pcm_chunks(source: str | Path, chunk_s: float = 0.02, realtime: bool = False,
               sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """(N,) float32 chunks of ``chunk_s`` seconds from an audio file, or from stdin (``"-"``:
    raw signed 16-bit little-endian mono PCM at ``sample_rate``). ``realtime``: a file is
    read no faster than it plays."""
    step = max(1, int(chunk_s * sample_rate))
    if str(source) == "-":
        while data := sys.stdin.buffer.read(step * 2):
            yield np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.float32) / 32768
        return
    wave = load_audio(source)
    start = time.perf_counter()
    step = max(1, int(chunk_s * wave.sample_rate))
    for i in range(0, len(wave.samples), step):
        if realtime:
            time.sleep(max(0.0, i / wave.sample_rate - (time.perf_counter() - start)))
        yield wave.samples[i:i + step]


def stream_to_file(portrait: Portrait, audio: str | Path, output: str | Path,
                   config: Config | None = None, realtime: bool = False,
                   plan: str = "live") -> int:
    """Animate ``audio`` (a file, or ``"-"`` for raw 16 kHz PCM on stdin) through ``Stream``
    with the ``plan`` motion source into an mp4 at ``output``; the file's audio is muxed in
    (stdin: video only). Returns the number of frames."""
    cfg = config or Config()
    out = check_output_path(output)
    speech: Waveform | None = None if str(audio) == "-" else load_audio(audio)
    rate = SAMPLE_RATE if speech is None else speech.sample_rate
    stream = Stream(portrait, cfg, rate, motion=plan)
    chunks = pcm_chunks(audio, realtime=realtime, sample_rate=rate)
    count, _ = write_frames((f.pixels for f in stream.frames(chunks)), out, stream.size, speech, cfg)
    return count


def add_stream_command(sub, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``stream`` to the CLI's subparsers; ``add_options``: the CLI's generation flags."""
    p = sub.add_parser("stream", help="animate audio as it arrives (a file in real time, or "
                                      "raw PCM on stdin), with ≤ 0.12 s of look-ahead")
    p.add_argument("--image", required=True, help="portrait photo (any format Pillow reads)")
    p.add_argument("--audio", required=True,
                   help="speech file, or - for raw 16 kHz mono s16le PCM on stdin")
    p.add_argument("-o", "--output", required=True, help="output .mp4 (stdin: video only)")
    p.add_argument("--realtime", action="store_true", help="read a file no faster than it plays")
    p.add_argument("--plan", choices=PLANS, default="live",
                   help="live: loudness-driven lips, ≤ 0.12 s behind the audio (default); "
                        "phrase: recognized phones, better lip-sync, frames follow each "
                        "recognized phrase (≤ 6 s behind at first, then ≤ 20 s)")
    add_options(p)
    p.set_defaults(func=stream_command)


def stream_command(args: argparse.Namespace) -> int:
    """Run ``stream`` from parsed flags; exit code 0."""
    from .cli import config_from_args
    from .media import load_image

    if args.export_motion:
        raise UserError("talkinghead stream does not write --export-motion files; use "
                        "talkinghead generate --export-motion")
    start = time.perf_counter()
    frames = stream_to_file(load_image(args.image), args.audio, args.output,
                            config_from_args(args), args.realtime, args.plan)
    if not args.quiet:
        print(f"wrote {args.output} ({frames} frames) in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    return 0
