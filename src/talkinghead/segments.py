"""Motion for long recordings in overlapping segments, so that rendering starts early.

Phone recognition decodes the speech in pieces of at most 20 s (the first at most 6 s, so
that the first frame comes soon) cut at quiet points (``audio.phones``). For recordings longer
than one piece, ``segment_blocks`` plans the motion of each piece as soon as that piece is
recognized, instead of after the whole recording:

* segment k covers the audio from ``OVERLAP_S`` before its piece starts (frame-aligned) to the
  piece's end; its features and motion are computed on that audio alone, with the phones of
  the previous piece's tail and its own, and with its own seed derived from (seed, k);
* in the overlap, segment k-1 fades out and segment k fades in (a smoothstep, so that pose
  and expression stay continuous in value and slope; both segments saw the same phones there,
  and each segment's edge effects lie where its weight is zero);
* blinks do not depend on the audio: one track for the whole recording from the seed, as
  ``make_motion`` draws it.

Same speech, configuration and seed → the same blocks, whatever the thread timing. Audio of
one piece (≤ 20 s) is not segmented: ``Pipeline`` plans it with ``make_motion`` as before.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .audio.features import compute_features
from .audio.phones import MAX_CHUNK_SECONDS, recognize_pieces, tidy_phones
from .config import Config
from .motion.blink import blink_track
from .motion.emotion import emotion_profile
from .motion.track import make_motion, num_frames_for
from .types import MotionTrack, Phone, Waveform

OVERLAP_S = 2.0
"""Seconds over which one segment's motion hands over to the next."""
FIRST_PIECE_S = 6.0
"""The first recognition piece is at most this long, so that rendering starts early."""


@dataclass(frozen=True)
class Piece:
    """A recognized piece of the speech: ``start``, ``end`` in seconds of the recording and
    its contiguous ``phones`` (times in seconds of the recording)."""

    start: float
    end: float
    phones: tuple[Phone, ...]


@dataclass
class StageClock:
    """Seconds the planner spent hearing (phones and features) and planning motion."""

    phones: float = 0.0
    motion: float = 0.0


def segmentable(speech: Waveform, config: Config) -> bool:
    """Whether the motion of ``speech`` is planned in segments: recognized (no transcript),
    longer than one recognition piece, with generated pose and blinks and no free view (which
    is spread over the whole video)."""
    m = config.motion
    return (speech.duration > MAX_CHUNK_SECONDS and not config.transcript
            and m.ref_pose is None and m.ref_blink is None and not (m.yaw or m.pitch or m.roll))


def recognized_pieces(speech: Waveform) -> Iterator[Piece]:
    """The speech's recognition pieces in order, each as soon as it is decoded."""
    for start, end, phones in recognize_pieces(speech, FIRST_PIECE_S):
        yield Piece(start, end, phones)


def segment_seed(seed: int, index: int) -> int:
    """The seed of segment ``index`` (0, 1, ...): a fixed function of the video's seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def window_phones(phones: tuple[Phone, ...], start: float, end: float) -> tuple[Phone, ...]:
    """``phones`` clipped to [start, end) seconds and shifted to start at 0, contiguous."""
    out = [Phone(p.label, max(p.start, start) - start, min(p.end, end) - start)
           for p in phones if p.end > start and p.start < end]
    return tidy_phones(out, end - start)


def segment_motion(speech: Waveform, phones: tuple[Phone, ...], first_frame: int,
                   end: float, channels: tuple[str, ...], config: Config,
                   index: int) -> MotionTrack:
    """Motion of the frames from ``first_frame`` to ``end`` seconds, from that audio alone
    (only its samples are read, ``Waveform.read``).

    ``phones``: at least those covering the window, in seconds of the recording.
    """
    fps = config.video.fps
    start = first_frame / fps
    rate = speech.sample_rate
    samples = speech.read(round(start * rate), round(end * rate))
    features = compute_features(Waveform(samples, rate), window_phones(phones, start, end))
    return make_motion(features, channels, fps, config.motion, segment_seed(config.seed, index))


def handover_weights(length: int) -> np.ndarray:
    """(length,) float32 weights of the incoming segment over an overlap of ``length``
    frames: a smoothstep from near 0 to near 1 (frame centres)."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def whole_blinks(config: Config, num_frames: int) -> np.ndarray:
    """(num_frames,) float32 blinks for the whole video, drawn as ``make_motion`` draws them."""
    m = config.motion
    if not m.blink:
        return np.zeros(num_frames, np.float32)
    blink_rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(3)[1])
    strength = m.emotion_strength if m.emotion != "neutral" else 0.0
    gain = 1 + (emotion_profile(m.emotion).blink_gain - 1) * strength
    return blink_track(blink_rng, config.video.fps, num_frames, gain)


def _block(track: MotionTrack, rows: slice, blink: np.ndarray) -> MotionTrack:
    """Rows of ``track`` with the given (len,) blinks."""
    return MotionTrack(fps=track.fps, channels=track.channels, expression=track.expression[rows],
                       pose=track.pose[rows], blink=blink, meta=track.meta)


def _blend(old: MotionTrack, new: MotionTrack, old_rows: slice, blink: np.ndarray) -> MotionTrack:
    """Frames where ``old`` (its ``old_rows``) hands over to ``new`` (its first rows)."""
    n = old_rows.stop - old_rows.start
    w = handover_weights(n)[:, None]
    expression = old.expression[old_rows] * (1 - w) + new.expression[:n] * w
    pose = old.pose[old_rows] * (1 - w) + new.pose[:n] * w
    return MotionTrack(fps=new.fps, channels=new.channels, expression=expression.astype(np.float32),
                       pose=pose.astype(np.float32), blink=blink, meta=new.meta)


def segment_blocks(speech: Waveform, channels: tuple[str, ...], config: Config,
                   clock: StageClock | None = None,
                   pieces: Iterator[Piece] | None = None) -> Iterator[MotionTrack]:
    """Consecutive blocks of the video's motion, in order; together they hold
    ``num_frames_for(speech.duration, fps)`` frames. Each block is yielded as soon as the
    pieces it depends on are recognized. ``clock`` collects the time spent; ``pieces``:
    recognized pieces (default: ``recognized_pieces(speech)``)."""
    clock = clock or StageClock()
    fps = config.video.fps
    total = num_frames_for(speech.duration, fps)
    blinks = whole_blinks(config, total)
    pieces = pieces if pieces is not None else recognized_pieces(speech)
    phones: tuple[Phone, ...] = ()
    done, prev, prev_first = 0, None, 0
    for index, piece in enumerate(_timed(pieces, clock)):
        t = time.perf_counter()
        first = done  # the previous segment hands over from here
        phones = tuple(p for p in phones if p.end > first / fps) + piece.phones
        track = segment_motion(speech, phones, first, piece.end, channels, config, index)
        clock.motion += time.perf_counter() - t
        handed = done
        if prev is not None:
            handed = min(prev_first + prev.num_frames, first + track.num_frames, total)
            if handed > done:
                yield _blend(prev, track, slice(done - prev_first, handed - prev_first),
                             blinks[done:handed])
        keep = min(max(int(np.floor((piece.end - OVERLAP_S) * fps)), handed), total)
        if keep > handed:
            yield _block(track, slice(handed - first, keep - first), blinks[handed:keep])
        done, prev, prev_first = keep, track, first
    if prev is not None and done < total:
        tail = _fit_length(prev, total - prev_first)
        yield _block(tail, slice(done - prev_first, total - prev_first), blinks[done:total])


def _fit_length(track: MotionTrack, n: int) -> MotionTrack:
    """``track`` cut or padded (repeating its last frame) to ``n`` frames."""
    if track.num_frames == n:
        return track
    idx = np.minimum(np.arange(n), track.num_frames - 1)
    return MotionTrack(fps=track.fps, channels=track.channels, expression=track.expression[idx],
                       pose=track.pose[idx], blink=track.blink[idx], meta=track.meta)


def _timed(pieces: Iterator[Piece], clock: StageClock) -> Iterator[Piece]:
    """``pieces``, adding the time spent producing each to ``clock.phones``."""
    while True:
        t = time.perf_counter()
        piece = next(pieces, None)
        clock.phones += time.perf_counter() - t
        if piece is None:
            return
        yield piece
