"""Phrase-level motion, planned piece by piece as the speech is heard (``PhraseMotion``).

This is the file pipeline's motion source, and ``talkinghead stream --plan phrase``'s. Speech
arrives in chunks (16 kHz); phone recognition decodes it in pieces cut at quiet points
(``audio.phones.PieceCutter``: at most 20 s, the first at most 6 s so that the first frame
comes soon). As soon as a piece is recognized, the motion of its frames is planned:

* segment k covers the audio from ``OVERLAP_S`` before its piece starts (frame-aligned) to the
  piece's end; its features and motion are computed on that audio alone, with the phones of
  the previous piece's tail and its own, and with its own seed derived from (seed, k) —
  segment 0 uses the seed itself, so that speech of one piece gets exactly ``make_motion``'s
  track;
* in the overlap, segment k-1 fades out and segment k fades in (a smoothstep, so that pose
  and expression stay continuous in value and slope; both segments saw the same phones there,
  and each segment's edge effects lie where its weight is zero);
* blinks and saccades do not depend on the audio: one track for the whole recording from the
  seed, as ``make_motion`` draws it (``motion.blink.BlinkSchedule``, ``motion.gaze.GazeSchedule``);
  the eyes' turn against the head's yaw is set on the final blocks.

Same speech, configuration and seed → the same blocks, however the audio was chunked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .audio.features import compute_features
from .audio.phones import MAX_CHUNK_SECONDS, SAMPLE_RATE, PieceCutter, recognize_piece, tidy_phones
from .config import Config
from .motion.blink import BlinkSchedule
from .motion.emotion import configured_emotion
from .motion.gaze import GazeSchedule, gaze_rng, with_gaze
from .motion.track import make_motion, num_frames_for
from .types import MotionTrack, Phone, Waveform

OVERLAP_S = 2.0
"""Seconds over which one segment's motion hands over to the next."""
FIRST_PIECE_S = 6.0
"""The first recognition piece of a long (or unknown-length) recording is at most this long."""


@dataclass(frozen=True)
class Piece:
    """A recognized piece of the speech: ``start``, ``end`` in seconds of the recording, its
    contiguous ``phones`` (times in seconds of the recording) and its ``samples`` (n,) float32
    at 16 kHz."""

    start: float
    end: float
    phones: tuple[Phone, ...]
    samples: np.ndarray


@dataclass
class StageClock:
    """Seconds the planner spent hearing (phones and features) and planning motion."""

    phones: float = 0.0
    motion: float = 0.0


def segment_seed(seed: int, index: int) -> int:
    """The seed of segment ``index`` (0, 1, ...): the video's seed for the first, then a fixed
    function of (seed, index)."""
    return seed if index == 0 else int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def window_phones(phones: tuple[Phone, ...], start: float, end: float) -> tuple[Phone, ...]:
    """``phones`` clipped to [start, end) seconds and shifted to start at 0, contiguous."""
    out = [Phone(p.label, max(p.start, start) - start, min(p.end, end) - start)
           for p in phones if p.end > start and p.start < end]
    return tidy_phones(out, end - start)


def segment_motion(samples: np.ndarray, phones: tuple[Phone, ...], first_frame: int,
                   end: float, channels: tuple[str, ...], config: Config,
                   index: int) -> MotionTrack:
    """Motion of the frames from ``first_frame`` to ``end`` seconds, from that audio alone:
    ``samples`` (n,) float32 at 16 kHz from ``first_frame / fps`` to ``end``.

    ``phones``: at least those covering the window, in seconds of the recording.
    """
    start = first_frame / config.video.fps
    features = compute_features(Waveform(samples, SAMPLE_RATE), window_phones(phones, start, end))
    return make_motion(features, channels, config.video.fps, config.motion,
                       segment_seed(config.seed, index))


def handover_weights(length: int) -> np.ndarray:
    """(length,) float32 weights of the incoming segment over an overlap of ``length``
    frames: a smoothstep from near 0 to near 1 (frame centres)."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def blink_schedule(config: Config, num_frames: int | None = None) -> BlinkSchedule:
    """The video's blinks, drawn as ``make_motion`` draws them (the whole track at once when
    ``num_frames`` is known)."""
    m = config.motion
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(3)[1])
    emotion, strength = configured_emotion(m)
    return BlinkSchedule(rng, config.video.fps, num_frames, emotion.gains(strength)[1], m.blink)


class Segmenter:
    """Recognized pieces in, consecutive blocks of the video's motion out (see the module)."""

    def __init__(self, channels: tuple[str, ...], config: Config, num_frames: int | None = None,
                 clock: StageClock | None = None):
        """``num_frames``: the video's length when known (blinks are then drawn at once)."""
        self.channels, self.config, self.fps = channels, config, config.video.fps
        self.clock = clock or StageClock()
        self.blinks = blink_schedule(config, num_frames)
        self.gaze = GazeSchedule(gaze_rng(config.seed), self.fps, config.motion.gaze == "natural",
                                 config.motion.blink)
        self.limit = num_frames if num_frames is not None else np.iinfo(np.int64).max
        self.phones: tuple[Phone, ...] = ()
        self.audio, self.audio_start = np.zeros(0, np.float32), 0  # 16 kHz from sample audio_start
        self.index = self.done = self.prev_first = 0
        self.prev: MotionTrack | None = None

    def push(self, piece: Piece) -> list[MotionTrack]:
        """Plan ``piece``; the blocks now final (all frames up to ``OVERLAP_S`` before its end)."""
        t = time.perf_counter()
        first = self.done  # the previous segment hands over from here
        self.phones = tuple(p for p in self.phones if p.end > first / self.fps) + piece.phones
        self.audio = np.concatenate([self.audio, piece.samples])
        window = self.audio[max(0, self._sample(first) - self.audio_start):]
        track = segment_motion(window, self.phones, first, piece.end, self.channels, self.config,
                               self.index)
        blocks, handed = [], self.done
        if self.prev is not None:
            handed = min(self.prev_first + self.prev.num_frames, first + track.num_frames,
                         self.limit)
            if handed > self.done:
                blocks.append(self._blend(track, slice(self.done - self.prev_first,
                                                       handed - self.prev_first)))
        keep = min(max(int(np.floor((piece.end - OVERLAP_S) * self.fps)), handed), self.limit)
        if keep > handed:
            blocks.append(self._block(track, slice(handed - first, keep - first)))
        self.done, self.prev, self.prev_first, self.index = keep, track, first, self.index + 1
        drop = self._sample(keep) - self.audio_start
        if drop > 0:
            self.audio, self.audio_start = self.audio[drop:], self.audio_start + drop
        self.clock.motion += time.perf_counter() - t
        return blocks

    def close(self, num_frames: int) -> list[MotionTrack]:
        """The blocks of the remaining frames, so that all blocks hold ``num_frames``."""
        if self.prev is None or self.done >= num_frames:
            return []
        tail = _fit_length(self.prev, num_frames - self.prev_first)
        return [self._block(tail, slice(self.done - self.prev_first, num_frames - self.prev_first))]

    def _sample(self, frame: int) -> int:
        return round(frame / self.fps * SAMPLE_RATE)

    def _block(self, track: MotionTrack, rows: slice) -> MotionTrack:
        """Rows of ``track`` with the video's blinks and gaze for them."""
        return self._eyes(track, track.expression[rows], track.pose[rows])

    def _eyes(self, track: MotionTrack, expression: np.ndarray, pose: np.ndarray) -> MotionTrack:
        """A block of ``track``'s kind from its (n, C) ``expression`` and (n, 6) ``pose``, with
        the video's next n frames of blinks and gaze (and the glances' blinks)."""
        n = len(pose)
        jaw = expression[:, track.channels.index("jaw_open")]
        targets, glance_blinks = self.gaze.take(n, jaw)
        expression = with_gaze(expression, track.channels, pose, targets, self.config.motion.gaze)
        return MotionTrack(fps=track.fps, channels=track.channels,
                           expression=expression.astype(np.float32), pose=pose.astype(np.float32),
                           blink=np.maximum(self.blinks.take(n, jaw), glance_blinks), meta=track.meta)

    def _blend(self, new: MotionTrack, old_rows: slice) -> MotionTrack:
        """Frames where the previous segment (its ``old_rows``) hands over to ``new``."""
        old, n = self.prev, old_rows.stop - old_rows.start
        w = handover_weights(n)[:, None]
        expression = old.expression[old_rows] * (1 - w) + new.expression[:n] * w
        pose = old.pose[old_rows] * (1 - w) + new.pose[:n] * w
        return self._eyes(new, expression, pose)


class PhraseMotion:
    """Motion source (see ``stream.MotionSource``): 16 kHz speech in chunks → blocks of motion
    planned from recognized phones, each as soon as its piece of speech is recognized."""

    def __init__(self, channels: tuple[str, ...], config: Config, duration: float | None = None,
                 clock: StageClock | None = None):
        """``duration``: the recording's length in seconds, when known (a file): speech of one
        piece (≤ 20 s) is then planned whole, and blinks drawn at once."""
        self.clock = clock or StageClock()
        first = MAX_CHUNK_SECONDS if duration is not None and duration <= MAX_CHUNK_SECONDS \
            else FIRST_PIECE_S
        self.cutter = PieceCutter(first_seconds=first)
        total = None if duration is None else num_frames_for(duration, config.video.fps)
        self.segmenter = Segmenter(channels, config, total, self.clock)

    def feed(self, samples: np.ndarray) -> list[MotionTrack]:
        """(n,) float32 16 kHz samples → the blocks now planned."""
        return self._plan(self.cutter.push(samples))

    def finish(self, num_frames: int) -> list[MotionTrack]:
        """The remaining blocks: all blocks together hold ``num_frames`` frames."""
        return self._plan(self.cutter.flush()) + self.segmenter.close(num_frames)

    def _plan(self, pieces: list[tuple[int, np.ndarray]]) -> list[MotionTrack]:
        blocks = []
        for first, samples in pieces:
            t = time.perf_counter()
            start = first / SAMPLE_RATE
            piece = Piece(start, start + len(samples) / SAMPLE_RATE,
                          recognize_piece(samples, start), samples)
            self.clock.phones += time.perf_counter() - t
            blocks += self.segmenter.push(piece)
        return blocks


def _fit_length(track: MotionTrack, n: int) -> MotionTrack:
    """``track`` cut or padded (repeating its last frame) to ``n`` frames."""
    if track.num_frames == n:
        return track
    idx = np.minimum(np.arange(n), track.num_frames - 1)
    return MotionTrack(fps=track.fps, channels=track.channels, expression=track.expression[idx],
                       pose=track.pose[idx], blink=track.blink[idx], meta=track.meta)
