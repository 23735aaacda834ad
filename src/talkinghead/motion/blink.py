"""Blinks: a seeded renewal process with a natural rate and an asymmetric lid profile.

Intervals are gamma-distributed (about 21 per minute: people blink more while they talk, about
26 per minute in conversation against 17 at rest), some blinks come in pairs, each lasts
100–400 ms: a quick close, a moment shut, a slower reopening; eyes never rest half-closed.
"""
from __future__ import annotations

import numpy as np

MEAN_INTERVAL_S = 3.0
MIN_INTERVAL_S = 1.0
SHAPE = 3.0
DOUBLE_BLINK_P = 0.08
DURATION_S = (0.16, 0.32)
CLOSE_SHARE = 0.3   # of a blink's length: closing, ...
HOLD_SHARE = 0.2    # ... then shut (real blinks stay shut for 2-3 frames at 25 fps), then reopening


def blink_times(rng: np.random.Generator, duration_s: float,
                rate_gain: float = 1.0) -> list[tuple[float, float]]:
    """(start, length) of each blink in seconds within ``duration_s``; ``rate_gain``
    multiplies the blink rate."""
    blinks: list[tuple[float, float]] = []
    t = float(rng.uniform(0.5, 2.5))
    while t < duration_s:
        length = float(rng.uniform(*DURATION_S))
        blinks.append((t, length))
        if rng.random() < DOUBLE_BLINK_P:
            t2 = t + length + float(rng.uniform(0.1, 0.3))
            blinks.append((t2, float(rng.uniform(*DURATION_S))))
            t = t2
        t += max(MIN_INTERVAL_S, float(rng.gamma(SHAPE, MEAN_INTERVAL_S / SHAPE)) / rate_gain)
    return [b for b in blinks if b[0] < duration_s]


def blink_track(rng: np.random.Generator, fps: float, num_frames: int,
                rate_gain: float = 1.0) -> np.ndarray:
    """(T,) float32 eyelid closure in [0, 1] per frame (1 = closed)."""
    frames = np.arange(num_frames)
    out = np.zeros(num_frames, dtype=np.float32)
    for start, length in blink_times(rng, num_frames / fps, rate_gain):
        out = np.maximum(out, one_blink(frames, fps, start, length))
    return out


def one_blink(frames: np.ndarray, fps: float, start: float, length: float) -> np.ndarray:
    """Closure at video ``frames`` (indices) of one blink from ``start`` s lasting ``length``
    s; the frame nearest the middle of its shut phase is fully shut."""
    out = lid_profile(frames / fps - start, length)
    peak = int(round((start + length * (CLOSE_SHARE + HOLD_SHARE / 2)) * fps))
    return np.where(frames == peak, 1.0, out)


def lid_profile(t: np.ndarray, length: float) -> np.ndarray:
    """Closure at times ``t`` (seconds after the blink starts) for a blink of ``length`` s."""
    close, shut = length * CLOSE_SHARE, length * (CLOSE_SHARE + HOLD_SHARE)
    closing = np.sin(np.clip(t / close, 0, 1) * np.pi / 2) ** 2
    opening = np.cos(np.clip((t - shut) / (length - shut), 0, 1) * np.pi / 2) ** 2
    inside = (t >= 0) & (t <= length)
    return np.where(t < close, closing, opening) * inside


class BlinkSchedule:
    """Eyelid closure for consecutive frames from one seeded generator: ``blink_track`` of the
    whole video at once when its length is known (as ``make_motion`` draws it), else drawn in
    blocks of ``BLOCK_S`` as frames are asked for (a live stream). Frames given out are
    forgotten, so memory stays flat."""

    BLOCK_S = 30.0

    def __init__(self, rng: np.random.Generator, fps: float, num_frames: int | None = None,
                 rate_gain: float = 1.0, enabled: bool = True):
        self.rng, self.fps, self.rate_gain, self.enabled = rng, fps, rate_gain, enabled
        self.track = np.zeros(0, np.float32)  # the frames not given out yet
        if num_frames is not None and enabled:
            self.track = blink_track(rng, fps, num_frames, rate_gain)

    def take(self, count: int) -> np.ndarray:
        """(count,) float32 closure of the next ``count`` frames."""
        if not self.enabled:
            return np.zeros(count, np.float32)
        while len(self.track) < count:
            block = blink_track(self.rng, self.fps, int(self.BLOCK_S * self.fps), self.rate_gain)
            self.track = np.concatenate([self.track, block])
        out, self.track = self.track[:count], self.track[count:]
        return out
