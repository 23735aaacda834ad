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
QUIET_JAW = 0.05    # jaw_open below this: not speaking
PAUSE_S = 0.12      # a blink due mid-word waits until the jaw has been quiet this long, ...
MAX_WAIT_S = 0.8    # ... at most this long


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
    """Eyelid closure for consecutive frames from one seeded generator: the blinks of
    ``blink_times`` for the whole video when its length is known (as ``make_motion`` draws
    them), else drawn in blocks of ``BLOCK_S`` as frames are asked for (a live stream). Speakers
    blink in pauses rather than mid-word: a blink that falls due while the jaw moves waits
    until it has been still for ``PAUSE_S``, at most ``MAX_WAIT_S``; the next blink comes no
    sooner than MIN_INTERVAL_S after it (the second of a pair keeps its distance), the others
    as drawn, so the rate stays. Frames given out are forgotten: memory stays flat."""

    BLOCK_S = 30.0

    def __init__(self, rng: np.random.Generator, fps: float, num_frames: int | None = None,
                 rate_gain: float = 1.0, enabled: bool = True):
        self.rng, self.fps, self.rate_gain, self.enabled = rng, fps, rate_gain, enabled
        self.frame = 0
        self.pending: list[tuple[float, float]] = []  # (start, length) s as drawn, not begun
        self.begun: list[tuple[float, float]] = []    # (start, length) s as shown, not over
        self.last = (-np.inf, -np.inf)                # the last begun blink: drawn, shown start
        self.drawn = 0.0                              # blinks are drawn up to this time, s
        self.quiet_s = 0.0                            # how long the jaw has been still, s
        if num_frames is not None and enabled:
            self.pending, self.drawn = blink_times(rng, num_frames / fps, rate_gain), np.inf

    def take(self, count: int, jaw: np.ndarray | None = None) -> np.ndarray:
        """(count,) float32 closure of the next ``count`` frames; ``jaw``: their (count,)
        ``jaw_open`` (None: no speech, the blinks come as drawn)."""
        if not self.enabled:
            return np.zeros(count, np.float32)
        for k in range(count):
            t = (self.frame + k) / self.fps
            quiet = jaw is None or jaw[k] < QUIET_JAW
            self.quiet_s = self.quiet_s + 1.0 / self.fps if quiet else 0.0
            self._draw(t + 1.0)
            while self.pending and self._due() <= t and not self._waits(t):
                start, length = self.pending.pop(0)
                shown = t if t - self._due(start) >= 1.0 / self.fps else self._due(start)
                self.begun.append((shown, length))
                self.last = (start, shown)
        frames = np.arange(self.frame, self.frame + count)
        out = np.zeros(count, np.float32)
        for start, length in self.begun:
            out = np.maximum(out, one_blink(frames, self.fps, start, length))
        self.frame += count
        self.begun = [(s, n) for s, n in self.begun if s + n > self.frame / self.fps]
        return out.astype(np.float32)

    def _due(self, start: float | None = None) -> float:
        """When the next pending blink (drawn at ``start``) is due, seconds."""
        start = self.pending[0][0] if start is None else start
        drawn, shown = self.last
        if start - drawn < MIN_INTERVAL_S:  # the second of a pair
            return shown + start - drawn
        return max(start, shown + MIN_INTERVAL_S)

    def _waits(self, t: float) -> bool:
        """Whether the next blink, due now, waits for the jaw to be still."""
        due, paired = self._due(), self.pending[0][0] - self.last[0] < MIN_INTERVAL_S
        return not paired and self.quiet_s < PAUSE_S and t - due < MAX_WAIT_S

    def _draw(self, until: float) -> None:
        """Draw blinks in BLOCK_S blocks until ``until`` s (a video of unknown length)."""
        while self.drawn < until:
            block = blink_times(self.rng, self.BLOCK_S, self.rate_gain)
            self.pending += [(self.drawn + s, n) for s, n in block]
            self.drawn += self.BLOCK_S
