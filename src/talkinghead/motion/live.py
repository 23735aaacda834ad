"""Live motion: causal, loudness-driven, with at most ``LOOKAHEAD_S`` of look-ahead.

``LiveMotion`` is the motion source of ``talkinghead stream`` (see ``stream.MotionSource``).
Frame k shows time t_k = (k + 0.5) / fps; its motion is planned as soon as audio up to
t_k + ``LOOKAHEAD_S`` (0.1 s) has arrived, i.e. at most 0.1 s + half a frame (0.12 s at 25 fps)
of look-ahead.

There is no phone recognition (PocketSphinx needs whole phrases, and the phrase planner's
coarticulation and pose smoothing look seconds ahead): jaw opening follows the speech level
relative to a running noise floor and speaker level, lips close in pauses and seal in
labial-like valleys (a dip well below the loudest sound of the last 0.15 s and the next
0.08 s, either silent or dominated by low frequencies: /m/'s murmur, /b/'s voice bar, /p/'s
closure, unless a high-frequency /t k/ burst ends it — and also /n d g/, which loudness cannot
tell apart), the head drifts with causally filtered noise that calms in pauses, and blinks come
from the same seeded process as the phrase planner's.
"""
from __future__ import annotations

import numpy as np

from ..config import Config
from ..types import MotionTrack
from .blink import BlinkSchedule
from .emotion import apply_emotion, configured_emotion, fade_in
from .expression import BROW_ACCENT, BROW_MAX, BROW_SMOOTH_S, BROW_SPEAKING, brow_lift
from .gaze import GazeSchedule, gaze_rng, with_gaze
from .pose import pose_style

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
CALM_PAUSE = 0.45
ONSET_BEFORE_S = (0.2, 0.06)  # a strong onset rises from the quietest hop this long before it ...
ONSET_RISE_DB = 10.0        # ... by this much ...
ONSET_LEVEL_DB = 3.0        # ... to no less than this far below the speaker's level
LIVE_BROW_GAP_S = 1.6       # at most one brow raise per this many seconds (unranked onsets)


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
    amplitude (times ``gain``: an emotion's energy), calmer in pauses. Output rows as
    ``MotionTrack.pose`` (radians, IOD)."""

    def __init__(self, config: Config, fps: float, rng: np.random.Generator, gain: float = 1.0):
        style = pose_style(config.motion.pose_style)
        gain = 0.0 if config.motion.still else config.motion.head_motion_scale * gain
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


class LiveBrows:
    """Causal brows, as the file path's (``expression._brows``) without its look-ahead: held up
    while speaking (following the speech activity over BROW_SMOOTH_S) and raised on a strong
    onset (the level ONSET_RISE_DB above the quietest hop of the ONSET_BEFORE_S before it, near
    the speaker's level), at most one every LIVE_BROW_GAP_S: the file path raises them on its
    most stressed syllables, which a causal stream cannot rank."""

    def __init__(self, fps: float):
        self.fps = fps
        self.follow = 1 - float(np.exp(-1 / (BROW_SMOOTH_S * fps)))
        self.speaking = 0.0
        self.age = np.inf                      # frames since the last raise began

    def step(self, activity: float, onset: bool) -> float:
        """brow_raise for the next frame, given its speech activity 0..1 and whether a strong
        syllable starts there."""
        self.speaking += self.follow * (activity - self.speaking)
        if onset and self.age >= LIVE_BROW_GAP_S * self.fps:
            self.age = 0.0
        lift = float(brow_lift(np.array(self.age), self.fps))
        self.age += 1
        return float(min(BROW_SPEAKING * self.speaking + BROW_ACCENT * lift, BROW_MAX))


class LiveMotion:
    """Motion source: 16 kHz speech in chunks → one block of motion per call, holding the
    frames whose audio (plus ``LOOKAHEAD_S``) has arrived. Same audio, config and seed →
    identical motion, whatever the chunk sizes."""

    def __init__(self, channels: tuple[str, ...], config: Config):
        self.config, self.channels, self.fps = config, channels, config.video.fps
        pose_rng, blink_rng, _ = (np.random.default_rng(s)
                                  for s in np.random.SeedSequence(config.seed).spawn(3))
        m = config.motion
        self.emotion, self.strength = configured_emotion(m)
        motion_gain, blink_gain = self.emotion.gains(self.strength)
        self.pose = DriftingPose(config, self.fps, pose_rng, motion_gain)
        self.blinks = BlinkSchedule(blink_rng, self.fps, rate_gain=blink_gain, enabled=m.blink)
        self.gaze = GazeSchedule(gaze_rng(config.seed), self.fps, config.motion.gaze == "natural",
                                 config.motion.blink)
        self.mouth = LoudnessMouth()
        self.brows = LiveBrows(self.fps)
        self.audio = np.zeros(0, np.float32)   # samples not yet consumed by hops
        self.hops: list[tuple[float, float, float, float]] = []  # LoudnessMouth.hop per hop
        self.hop_base = 0                      # hop number of ``hops[0]``
        self.received = 0                      # samples fed so far
        self.next_frame = 0

    def feed(self, samples: np.ndarray) -> list[MotionTrack]:
        """(n,) float32 16 kHz samples → the frames now ready (one block, or none)."""
        self.audio = np.concatenate([self.audio, samples])
        self.received += len(samples)
        self._hop_all()
        return self._emit(self.received / SAMPLE_RATE - LOOKAHEAD_S)

    def finish(self, num_frames: int) -> list[MotionTrack]:
        """The remaining frames up to ``num_frames`` (silence is assumed after the audio)."""
        pad = int((LOOKAHEAD_S + 2 / self.fps) * SAMPLE_RATE) + WINDOW
        self.audio = np.concatenate([self.audio, np.zeros(pad, np.float32)])
        self._hop_all()
        return self._emit(np.inf, limit=num_frames)

    def _hop_all(self) -> None:
        count = max(0, (len(self.audio) - WINDOW) // HOP + 1)
        for k in range(count):
            self.hops.append(self.mouth.hop(self.audio[k * HOP:k * HOP + WINDOW]))
        self.audio = self.audio[count * HOP:]

    def _emit(self, ready_until: float, limit: int | None = None) -> list[MotionTrack]:
        rows = []
        while limit is None or self.next_frame < limit:
            t = (self.next_frame + 0.5) / self.fps
            ahead = max(ANTICIPATION_S[1], VALLEY_S[1])
            if t > ready_until or self._hop_index(t + ahead) >= self.hop_base + len(self.hops):
                break
            rows.append(self._frame(t))
            self.next_frame += 1
        if not rows:
            return []
        expression, pose = (np.stack(x) for x in zip(*rows))
        expression, pose = self._with_emotion(expression, pose, self.next_frame - len(rows))
        jaw = expression[:, self.channels.index("jaw_open")]
        targets, glance_blinks = self.gaze.take(len(rows), jaw)
        expression = with_gaze(expression, self.channels, pose, targets, self.config.motion.gaze)
        return [MotionTrack(fps=self.fps, channels=self.channels, expression=expression, pose=pose,
                            blink=np.maximum(self.blinks.take(len(rows), jaw), glance_blinks), meta={})]

    def _with_emotion(self, expression: np.ndarray, pose: np.ndarray,
                      first: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, C) expression and (n, 6) pose of the frames from ``first`` with the emotion's
        held expression and head bearing (as the phrase planner's ``make_motion``)."""
        if self.strength == 0:
            return expression, pose
        expression = apply_emotion(expression, self.channels, self.fps, self.emotion,
                                   self.strength, first)
        pose = pose.copy()
        bearing = np.radians(self.emotion.pitch_deg * self.strength)
        pose[:, 0] += bearing * fade_in(len(pose), self.fps, first)
        return expression, pose

    def _hop_index(self, t: float) -> int:
        """Index of the 10 ms hop whose window is centred nearest ``t`` seconds."""
        return max(0, round((t * SAMPLE_RATE - WINDOW / 2) / HOP))

    def _frame(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(C,) float32 expression and (6,) pose of the frame shown at ``t`` seconds."""
        lo, hi = self._hop_index(t + ANTICIPATION_S[0]), self._hop_index(t + ANTICIPATION_S[1])
        window = np.array(self.hops[lo - self.hop_base:hi + 1 - self.hop_base])
        openness, activity = float(window[:, 0].mean()), float(window[:, 1].mean())
        labial = self._labial(t)
        jaw = JAW_MAX * openness * (1 - 0.5 * labial) * self.config.motion.expression_scale
        expression = np.zeros(len(self.channels), np.float32)
        expression[self.channels.index("jaw_open")] = jaw
        expression[self.channels.index("lip_close")] = jaw * labial
        brow = self.brows.step(activity, self._onset(t))
        expression[self.channels.index("brow_raise")] = brow * self.config.motion.expression_scale
        pose = self.pose.step(activity)
        self._forget(min(lo, self._hop_index(t - max(VALLEY_S[0], ONSET_BEFORE_S[0]))))
        return expression, pose

    def _onset(self, t: float) -> bool:
        """Whether a strong syllable starts at ``t`` s: the loudest hop around it (ANTICIPATION_S)
        ONSET_RISE_DB above the quietest of the ONSET_BEFORE_S span before, and near the
        speaker's level."""
        def levels(a: float, b: float) -> np.ndarray:
            lo, hi = self._hop_index(t + a) - self.hop_base, self._hop_index(t + b) - self.hop_base
            return np.array([h[2] for h in self.hops[max(lo, 0):max(hi + 1, 0)]])

        now, before = levels(*ANTICIPATION_S), levels(-ONSET_BEFORE_S[0], -ONSET_BEFORE_S[1])
        if not len(now) or not len(before):
            return False
        peak = float(now.max())
        return peak - float(before.min()) >= ONSET_RISE_DB and peak >= self.mouth.level - ONSET_LEVEL_DB

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
