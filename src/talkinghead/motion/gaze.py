"""Eye gaze: the eyes hold the viewer's eye while the head moves, and jump in saccades.

Two expression channels turn both eyes in the head: ``gaze_x`` 1 is ``UNIT_DEG`` towards the
image's left (the direction of positive yaw), ``gaze_y`` 1 is ``UNIT_DEG`` down (only down:
the upper lids follow the eyes down and cover what the turned eyeball leaves). A presenter
keeps eye contact, so when the head turns the eyes turn back by ``EYE_CONTACT`` of the head's
yaw. On top of that, a seeded renewal process moves the gaze target (degrees from the viewer)
in saccades: fixations near the viewer (a horizontal spread of ``DRIFT_DEG``) lasting
``FIXATION_S``, and every few seconds (``GLANCE_EVERY_S``) a glance away of ``GLANCE_DEG``
held ``GLANCE_HOLD_S`` before the eyes come back: to a side, down to a side, or down
(``GLANCE_DOWN``). The evaluation clips' speakers glance away by up to a tenth of the eye's
width (about 12°) for about a second, two or three times in 8 s. Speakers look away in
hesitation pauses and as they start a phrase, not in mid-phrase: a glance that falls due
while the jaw moves waits for a pause of ``PAUSE_S`` (``QUIET_JAW``), at most ``MAX_WAIT_S``.
Large gaze shifts bring a blink with them: ``GLANCE_BLINK_P`` of the glances start with one.

Modes (``MotionConfig.gaze``): ``natural`` (eye contact and saccades), ``camera`` (eye
contact only), ``fixed`` (the eyes stay as in the photo, turning with the head).
"""
from __future__ import annotations

import numpy as np

from .blink import DURATION_S, QUIET_JAW, one_blink

UNIT_DEG = 20.0
EYE_CONTACT = 0.85
MAX_EYE_DEG = 14.0
FIXATION_S = (1.3, 2.5, 0.3)     # near the viewer: gamma law (mean, shape, minimum), seconds
DRIFT_DEG = 1.5
GLANCE_EVERY_S = (4.0, 3.0, 1.5)  # from the end of one glance away to the next, as FIXATION_S
GLANCE_DEG = (6.0, 13.0)
GLANCE_DOWN = ((0.5, 0.0), (0.3, 0.7), (0.2, 1.0))  # (share, downward part) of the glances
GLANCE_HOLD_S = (0.4, 1.4)
GLANCE_BLINK_P = 0.2
PAUSE_S = 0.25
MAX_WAIT_S = 3.0
SACCADE_S = 0.04


class GazeSchedule:
    """Gaze targets (degrees from the viewer: towards the image's left, down) for consecutive
    frames, and the lids of the blinks that come with glances (unless ``blinks`` is False),
    from one seeded generator; frames given out are forgotten."""

    def __init__(self, rng: np.random.Generator, fps: float, enabled: bool = True,
                 blinks: bool = True):
        self.rng, self.fps, self.enabled, self.blinks = rng, fps, enabled, blinks
        self.frame = 0
        self.glance_blinks: list[tuple[float, float]] = []  # (start, length) s, not yet over
        self.before = self.target = np.zeros(2)  # the fixation before the last saccade, and now
        self.since = -1.0                    # time of the last saccade, seconds
        self.away = False
        self.quiet_s = 0.0                   # how long the jaw has been still, seconds
        self.glance_at = self._gamma(GLANCE_EVERY_S)
        self.next = min(self._gamma(FIXATION_S), self.glance_at)

    def take(self, count: int, jaw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The next ``count`` frames' (count, 2) float32 targets, degrees (left, down), and
        (count,) float32 closure of the glances' blinks. ``jaw``: the frames' (count,)
        ``jaw_open`` (None: no speech)."""
        out, lids = np.zeros((count, 2), np.float32), np.zeros(count, np.float32)
        if not self.enabled:
            return out, lids
        for k in range(count):
            t = (self.frame + k) / self.fps
            quiet = jaw is None or jaw[k] < QUIET_JAW
            self.quiet_s = self.quiet_s + 1.0 / self.fps if quiet else 0.0
            while t >= self.next:
                if self._waits(t):
                    self.next = t + 1.0 / self.fps
                    break
                self._saccade()
            step = np.clip((t - self.since) / SACCADE_S, 0.0, 1.0)
            out[k] = self.before + (self.target - self.before) * step
        frames = np.arange(self.frame, self.frame + count)
        for start, length in self.glance_blinks:
            lids = np.maximum(lids, one_blink(frames, self.fps, start, length))
        self.frame += count
        self.glance_blinks = [(s, n) for s, n in self.glance_blinks if s + n > self.frame / self.fps]
        return out, lids.astype(np.float32)

    def _waits(self, t: float) -> bool:
        """Whether a glance due now waits for a pause (``PAUSE_S`` of still jaw)."""
        due = not self.away and self.next >= self.glance_at
        return due and self.quiet_s < PAUSE_S and t - self.glance_at < MAX_WAIT_S

    def _saccade(self) -> None:
        """Jump to the next fixation at time ``self.next``: a glance away when one is due, else
        (and after a glance) a fixation near the viewer."""
        rng, now = self.rng, self.next
        glance = not self.away and now >= self.glance_at
        if glance:
            shares, downs = zip(*GLANCE_DOWN)
            down = downs[rng.choice(len(downs), p=shares)]
            size, side = rng.uniform(*GLANCE_DEG), rng.choice((-1.0, 1.0))
            target = size * np.array([side * np.sqrt(1 - down * down), down])
            self.next = now + float(rng.uniform(*GLANCE_HOLD_S))
            blink, length = rng.random() < GLANCE_BLINK_P, float(rng.uniform(*DURATION_S))
            if blink and self.blinks:
                self.glance_blinks.append((now, length))
        else:
            drift = np.clip(rng.normal(0.0, DRIFT_DEG), -2 * DRIFT_DEG, 2 * DRIFT_DEG)
            target = np.array([drift, 0.0])
            if self.away:
                self.glance_at = now + self._gamma(GLANCE_EVERY_S)
            self.next = min(now + self._gamma(FIXATION_S), self.glance_at)
        self.before, self.target, self.since, self.away = self.target, target, now, glance

    def _gamma(self, law: tuple[float, float, float]) -> float:
        """Seconds drawn from a gamma law given as (mean, shape, minimum)."""
        mean, shape, least = law
        return max(least, float(self.rng.gamma(shape, mean / shape)))


def gaze_rng(seed: int) -> np.random.Generator:
    """The gaze's generator for ``seed`` (the fourth stream of the seed, after pose, blinks
    and breathing)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])


def eye_turn(targets: np.ndarray, pose: np.ndarray, mode: str) -> np.ndarray:
    """(T, 2) float32 ``gaze_x``, ``gaze_y`` values: (T, 2) ``targets`` in degrees and the
    head's yaw and pitch from (T, 6) ``pose`` (radians), for a gaze ``mode``
    (``config.GAZES``). Eye contact turns the eyes back against the yaw, and down against a
    head tipped back (not up against a nod: the eyes never look up)."""
    out = np.zeros((len(pose), 2), np.float32)
    if mode == "fixed":
        return out
    out[:, 0] = -EYE_CONTACT * np.degrees(pose[:, 1])
    out[:, 1] = -EYE_CONTACT * np.degrees(pose[:, 0])
    if mode == "natural":
        out += targets
    out[:, 0] = np.clip(out[:, 0], -MAX_EYE_DEG, MAX_EYE_DEG)
    out[:, 1] = np.clip(out[:, 1], 0.0, MAX_EYE_DEG)
    return out / np.float32(UNIT_DEG)


def with_gaze(expression: np.ndarray, channels: tuple[str, ...], pose: np.ndarray,
              targets: np.ndarray, mode: str) -> np.ndarray:
    """(T, C) ``expression`` with its ``gaze_x``, ``gaze_y`` columns set (a copy)."""
    out = expression.copy()
    out[:, [channels.index("gaze_x"), channels.index("gaze_y")]] = eye_turn(targets, pose, mode)
    return out
