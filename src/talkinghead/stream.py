"""Live animation: audio arrives in chunks, frames leave with bounded latency.

``Stream`` fits the face once, then turns each chunk of mono audio (16 kHz float32; other
rates are resampled) into the video frames whose audio has fully arrived, plus ``LOOKAHEAD_S``.

Latency. Frame k shows time t_k = (k + 0.5) / fps; it is emitted as soon as audio up to
t_k + ``LOOKAHEAD_S`` (0.1 s) has been fed, i.e. at most 0.1 s + half a frame (0.12 s at
25 fps) of look-ahead, plus the chunk size of the source and the render time (~10 ms at 512²).

The live motion model is loudness-driven (no phone recognition: PocketSphinx needs whole
phrases, and the file path's coarticulation and pose smoothing look seconds ahead): jaw
opening follows the speech level relative to a running noise floor and speaker level, lips
close in pauses and seal in labial-like valleys (a dip well below the loudest sound of the
last 0.15 s and the next 0.08 s, either silent or dominated by low frequencies: /m/'s murmur,
/b/'s voice bar, /p/'s closure, unless a high-frequency /t k/ burst ends it — and also /n d g/,
which loudness cannot tell apart), the head drifts with causally filtered noise that calms in
pauses, and blinks come from the same seeded process as the file path. The file pipeline
(``Pipeline``) shares the renderer and the threaded render → encode path but plans motion from
the whole utterance, which lip-syncs better; that is why it is not built on this causal loop.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .config import Config
from .face.crop import Framing, plan_framing
from .face.landmarks import find_face
from .face.model import fit_face
from .media import VideoWriter, check_output_path, load_audio
from .motion.blink import blink_track
from .motion.pose import pose_style
from .motion.track import num_frames_for
from .render.prefetch import Prefetch
from .render.renderer import Renderer
from .types import FaceFit, Portrait, Waveform

SAMPLE_RATE = 16000
HOP = 160                   # 10 ms loudness hops
WINDOW = 320                # 20 ms RMS window
LOOKAHEAD_S = 0.1           # audio needed beyond a frame's centre time
ANTICIPATION_S = (-0.04, 0.06)  # hops averaged into a frame's jaw, relative to its time
VALLEY_S = (0.15, 0.08)     # a labial valley is looked for this far before and after a frame
VALLEY_DB = (5.0, 11.0)     # dip below the loudest sound in that span: no seal .. full seal
LOW_RATIO_DB = (8.0, 16.0)  # energy below 1 kHz over energy above 2 kHz: not labial .. labial
RELEASE_DB = (-4.0, 4.0)    # that ratio where the sound comes back: /t k/ bursts .. /p b m/
OPEN_DB = 8.0               # dB above the noise floor that counts as speech
OPEN_RANGE_DB = 18.0        # the jaw opens from this far below the speaker's level
JAW_MAX = 0.45              # jaw_open 4 dB above the speaker's typical level
LEVEL_INIT_DB = -26.0
NOISE_INIT_DB = -60.0
DYNAMIC_RANGE_DB = 40.0     # the noise floor is taken no lower than this below the speaker
BLINK_BLOCK_S = 30.0
CALM_PAUSE = 0.45


@dataclass(frozen=True)
class StreamFrame:
    """One emitted frame. ``index``: frame number from 0; ``time``: its centre, seconds of
    audio; ``pixels``: (H, W, 3) uint8 RGB; ``audio_seen``: seconds of audio fed when it was
    rendered (``audio_seen - time`` is the look-ahead it used); ``expression``: (C,) float32
    weights of ``Stream.channels`` and ``pose``: (6,) as ``MotionTrack.pose`` (to drive
    another renderer)."""

    index: int
    time: float
    pixels: np.ndarray
    audio_seen: float
    expression: np.ndarray
    pose: np.ndarray


class LoudnessMouth:
    """Causal speech level → jaw opening, one 10 ms hop at a time (adaptive to the speaker)."""

    def __init__(self) -> None:
        self.noise, self.level = NOISE_INIT_DB, LEVEL_INIT_DB

    def hop(self, samples: np.ndarray) -> tuple[float, float, float, float]:
        """(WINDOW,) float32 samples → (openness 0..~1.3, speech activity 0 or 1, level dB,
        low-to-high band ratio dB)."""
        x = samples - samples.mean()
        db = float(10 * np.log10(np.mean(x * x) + 1e-10))
        return (*self._open(db), db, _low_high_ratio(x))

    def _open(self, db: float) -> tuple[float, float]:
        self.noise = min(db, self.noise + 0.02) if db < self.noise + 12 else self.noise + 0.02
        if db > self.noise + 15:
            self.level += 0.02 * (db - self.level)
        self.noise = max(self.noise, self.level - DYNAMIC_RANGE_DB)
        gate = float(db > self.noise + OPEN_DB)
        openness = float(np.clip((db - self.level + OPEN_RANGE_DB) / (OPEN_RANGE_DB + 4), 0, 1.2))
        return gate * openness ** 1.5, gate


class DriftingPose:
    """Causal head motion: per axis, twice one-pole-filtered seeded noise scaled to the style's
    amplitude, calmer in pauses. Output rows as ``MotionTrack.pose`` (radians, IOD)."""

    def __init__(self, config: Config, fps: float, rng: np.random.Generator):
        style = pose_style(config.motion.pose_style)
        gain = 0.0 if config.motion.still else config.motion.head_motion_scale
        self.amplitude = np.radians(np.array(style.amplitude)) * gain
        self.alpha = float(np.exp(-2 * np.pi * style.tempo / fps))
        self.norm = np.sqrt((1 + self.alpha) ** 3 / (1 - self.alpha) / (1 + self.alpha ** 2)) \
            if self.alpha < 1 else 1.0
        self.state = np.zeros((2, 3))
        self.calm = CALM_PAUSE
        self.rng = rng

    def step(self, activity: float) -> np.ndarray:
        """(6,) float32 pose for the next frame, given the frame's speech activity 0..1."""
        a = self.alpha
        self.state[0] = a * self.state[0] + (1 - a) * self.rng.standard_normal(3)
        self.state[1] = a * self.state[1] + (1 - a) * self.state[0]
        self.calm += 0.05 * (CALM_PAUSE + (1 - CALM_PAUSE) * activity - self.calm)
        pose = np.zeros(6, np.float32)
        pose[:3] = self.state[1] * self.norm * self.amplitude * self.calm
        pose[4] = 0.25 * pose[0]
        return pose


class Stream:
    """Portrait + audio chunks → frames with ≤ ``LOOKAHEAD_S`` of look-ahead.

    ``feed(samples)`` returns the frames that became ready; ``finish()`` the rest, so that a
    whole recording gives ``num_frames_for(duration, fps)`` frames, as the file pipeline does.
    Same portrait, audio, config and seed → identical frames, whatever the chunk sizes.
    """

    def __init__(self, portrait: Portrait, config: Config | None = None,
                 sample_rate: int = SAMPLE_RATE, face: tuple[Framing, FaceFit] | None = None):
        """``face``: the framing and fit of an earlier ``Stream`` of the same portrait and
        config (``stream.face``), to skip detection and fitting."""
        self.config = cfg = config or Config()
        self.fps = cfg.video.fps
        self.sample_rate = sample_rate
        self.framing, fit = face or _fit(portrait, cfg)
        self.face = (self.framing, fit)
        self.renderer = Renderer(self.framing, fit)
        self.channels = fit.channels
        pose_rng, blink_rng, _ = (np.random.default_rng(s)
                                  for s in np.random.SeedSequence(cfg.seed).spawn(3))
        self.pose = DriftingPose(cfg, self.fps, pose_rng)
        self.blink_rng = blink_rng
        self.blinks = np.zeros(0, np.float32)
        self.mouth = LoudnessMouth()
        self.audio = np.zeros(0, np.float32)   # 16 kHz samples not yet consumed by hops
        self.hops: list[tuple[float, float, float, float]] = []  # LoudnessMouth.hop per hop
        self.hop_base = 0                      # hop number of ``hops[0]``
        self.received = 0                      # 16 kHz samples fed so far
        self.next_frame = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.framing.image.shape[1], self.framing.image.shape[0]

    def feed(self, samples: np.ndarray) -> list[StreamFrame]:
        """Add (N,) mono float32 samples in [-1, 1] at ``sample_rate``; the frames now ready."""
        chunk = self._to_16k(np.asarray(samples, np.float32).reshape(-1))
        self.audio = np.concatenate([self.audio, chunk])
        self.received += len(chunk)
        self._hop_all()
        return self._emit(self.received / SAMPLE_RATE - LOOKAHEAD_S)

    def finish(self) -> list[StreamFrame]:
        """The remaining frames up to the end of the audio (silence is assumed after it)."""
        total = num_frames_for(self.received / SAMPLE_RATE, self.fps)
        pad = int((LOOKAHEAD_S + 2 / self.fps) * SAMPLE_RATE) + WINDOW
        self.audio = np.concatenate([self.audio, np.zeros(pad, np.float32)])
        self._hop_all()
        return self._emit(np.inf, limit=total)

    def _to_16k(self, x: np.ndarray) -> np.ndarray:
        if self.sample_rate == SAMPLE_RATE:
            return x
        g = gcd(self.sample_rate, SAMPLE_RATE)  # per-chunk resampling: fine for live use
        return resample_poly(x, SAMPLE_RATE // g, self.sample_rate // g).astype(np.float32)

    def _hop_all(self) -> None:
        count = max(0, (len(self.audio) - WINDOW) // HOP + 1)
        for k in range(count):
            self.hops.append(self.mouth.hop(self.audio[k * HOP:k * HOP + WINDOW]))
        self.audio = self.audio[count * HOP:]

    def _emit(self, ready_until: float, limit: int | None = None) -> list[StreamFrame]:
        out = []
        while limit is None or self.next_frame < limit:
            t = (self.next_frame + 0.5) / self.fps
            ahead = max(ANTICIPATION_S[1], VALLEY_S[1])
            if t > ready_until or self._hop_index(t + ahead) >= self.hop_base + len(self.hops):
                break
            out.append(self._frame(self.next_frame, t))
            self.next_frame += 1
        return out

    def _hop_index(self, t: float) -> int:
        """Index of the 10 ms hop whose window is centred nearest ``t`` seconds."""
        return max(0, round((t * SAMPLE_RATE - WINDOW / 2) / HOP))

    def _frame(self, index: int, t: float) -> StreamFrame:
        lo, hi = self._hop_index(t + ANTICIPATION_S[0]), self._hop_index(t + ANTICIPATION_S[1])
        window = np.array(self.hops[lo - self.hop_base:hi + 1 - self.hop_base])
        openness, activity = float(window[:, 0].mean()), float(window[:, 1].mean())
        labial = self._labial(t)
        jaw = JAW_MAX * openness * (1 - 0.5 * labial) * self.config.motion.expression_scale
        expression = np.zeros(len(self.channels), np.float32)
        expression[self.channels.index("jaw_open")] = jaw
        expression[self.channels.index("lip_close")] = jaw * labial
        pose = self.pose.step(activity)
        pixels = self.renderer.render(expression, pose, self._blink(index))
        self._forget(min(lo, self._hop_index(t - VALLEY_S[0])))
        return StreamFrame(index, t, pixels, self.received / SAMPLE_RATE, expression, pose)

    def _labial(self, t: float) -> float:
        """0..1: how surely a hop within half a frame of ``t`` s lies in a labial valley: well
        below the loudest sound in the VALLEY_S span around it, low frequencies dominating, and
        the sound that follows it not a high-frequency burst (/t k/)."""
        before, after = (round(s * SAMPLE_RATE / HOP) for s in VALLEY_S)
        centre = self._hop_index(t) - self.hop_base
        hops = np.array(self.hops[max(0, centre - before):centre + after + 1])
        if not hops[:, 1].any():
            return 0.0
        mid = min(centre, before)
        half = round(0.5 * SAMPLE_RATE / (self.fps * HOP))
        near = hops[max(0, mid - half):mid + half + 1]
        dip = hops[:, 2].max() - near[:, 2]
        low = np.where(near[:, 1] > 0, near[:, 3], LOW_RATIO_DB[1])  # a stop's silent closure
        score = float(np.max(_ramp(dip, VALLEY_DB) * _ramp(low, LOW_RATIO_DB)))
        return score * float(_ramp(_release_ratio(hops[:, 2], hops[:, 3], mid), RELEASE_DB))

    def _blink(self, index: int) -> float:
        if not self.config.motion.blink:
            return 0.0
        block = int(BLINK_BLOCK_S * self.fps)
        while index >= len(self.blinks):
            self.blinks = np.concatenate([self.blinks, blink_track(self.blink_rng, self.fps, block)])
        return float(self.blinks[index])

    def _forget(self, keep_from: int) -> None:
        """Memory stays flat: hops before ``keep_from`` are never needed again."""
        drop = keep_from - self.hop_base
        if drop > 0:
            del self.hops[:drop]
            self.hop_base = keep_from


def _release_ratio(db: np.ndarray, ratio: np.ndarray, mid: int) -> float:
    """Band ratio (dB) where the sound comes back after the quietest hop at or after ``mid``:
    the first later hop VALLEY_DB[0] louder than it; +inf when none has come yet."""
    bottom = mid + int(np.argmin(db[mid:]))
    later = np.flatnonzero(db[bottom + 1:] >= db[bottom] + VALLEY_DB[0])
    return float(ratio[bottom + 1 + later[0]]) if len(later) else np.inf


def _ramp(x: np.ndarray, edges: tuple[float, float]) -> np.ndarray:
    """0 at ``edges[0]`` or below, 1 at ``edges[1]`` or above, linear between."""
    return np.clip((x - edges[0]) / (edges[1] - edges[0]), 0.0, 1.0)


_HANN = np.hanning(WINDOW)
_BANDS = np.fft.rfftfreq(WINDOW, 1 / SAMPLE_RATE)


def _low_high_ratio(x: np.ndarray) -> float:
    """dB of (WINDOW,) samples' energy below 1 kHz over their energy above 2 kHz."""
    power = np.abs(np.fft.rfft(x * _HANN)) ** 2
    low, high = power[_BANDS < 1000].sum(), power[_BANDS >= 2000].sum()
    return float(10 * np.log10((low + 1e-12) / (high + 1e-12)))


def _fit(portrait: Portrait, cfg: Config) -> tuple[Framing, FaceFit]:
    """Find, frame and fit the face once."""
    mesh, _ = find_face(portrait.pixels, cfg.face.face_index)
    framing = plan_framing(portrait.pixels, mesh, cfg.face.preprocess, cfg.face.size)
    return framing, fit_face(framing.map_points(mesh), (framing.image.shape[1], framing.image.shape[0]))


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


def stream_frames(stream: Stream, chunks: Iterable[np.ndarray]) -> Iterator[StreamFrame]:
    """Every frame for a sequence of audio chunks, as soon as each is ready."""
    for chunk in chunks:
        yield from stream.feed(chunk)
    yield from stream.finish()


def stream_to_file(portrait: Portrait, audio: str | Path, output: str | Path,
                   config: Config | None = None, realtime: bool = False) -> int:
    """Animate ``audio`` (a file, or ``"-"`` for raw 16 kHz PCM on stdin) through ``Stream`` into
    an mp4 at ``output``; the file's audio is muxed in (stdin: video only). Returns frames."""
    cfg = config or Config()
    out = check_output_path(output)
    speech: Waveform | None = None if str(audio) == "-" else load_audio(audio)
    rate = SAMPLE_RATE if speech is None else speech.sample_rate
    stream = Stream(portrait, cfg, rate)
    chunks = pcm_chunks(audio, realtime=realtime, sample_rate=rate)
    w, h = stream.size
    v = cfg.video
    with VideoWriter(out, w, h, v.fps, speech, v.crf, v.preset) as writer, \
            Prefetch(f.pixels for f in stream_frames(stream, chunks)) as frames:
        for pixels in frames:
            writer.write(pixels)
    return stream.next_frame


def add_stream_command(sub, add_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``stream`` to the CLI's subparsers; ``add_options``: the CLI's generation flags."""
    p = sub.add_parser("stream", help="animate audio as it arrives (a file in real time, or "
                                      "raw PCM on stdin), with ≤ 0.12 s of look-ahead")
    p.add_argument("--image", required=True, help="portrait photo (any format Pillow reads)")
    p.add_argument("--audio", required=True,
                   help="speech file, or - for raw 16 kHz mono s16le PCM on stdin")
    p.add_argument("-o", "--output", required=True, help="output .mp4 (stdin: video only)")
    p.add_argument("--realtime", action="store_true", help="read a file no faster than it plays")
    add_options(p)
    p.set_defaults(func=stream_command)


def stream_command(args: argparse.Namespace) -> int:
    """Run ``stream`` from parsed flags; exit code 0."""
    from .cli import config_from_args
    from .media import load_image

    start = time.perf_counter()
    frames = stream_to_file(load_image(args.image), args.audio, args.output,
                            config_from_args(args), args.realtime)
    if not args.quiet:
        print(f"wrote {args.output} ({frames} frames) in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    return 0
