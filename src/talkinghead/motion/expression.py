"""Audio → expression channels (the role of SadTalker's ExpNet), per video frame."""
from __future__ import annotations

import numpy as np

from ..audio.dsp import gaussian_filter1d, minimum_filter1d
from ..audio.features import frame_values
from ..types import AudioFeatures
from .accents import accent_impulses, gestures, stress
from .coarticulation import mouth_targets
from .visemes import TARGETS

SPEECH_LEVEL_PCT = 60
LOUDNESS_SLOPE = 0.035      # jaw gain per dB of phrase loudness around the speaker's level
LOUDNESS_SMOOTH_S = 0.6     # phrase-level loudness: whisper vs shout, not syllable by syllable
JAW_GAIN_RANGE = (0.55, 1.3)
BROW_SPEAKING = 0.25        # brow raise held while speaking, ...
BROW_LEAD_S = 0.25          # ... from this long before a phrase starts,
BROW_SMOOTH_S = 0.2         # ... rising and falling over about this long
BROW_ACCENT = 0.6           # a brow raise on a typical stressed syllable, ...
BROW_GAP_S = 1.0            # ... at most one per this many seconds,
BROW_MIN_SHARE = 0.8        # ... on syllables at least this stressed (share of a typical one),
BROW_RISE_S, BROW_FALL_S = 0.15, 0.4  # ... up to its peak on the syllable, then relaxing
BROW_MAX = 0.8              # speech raises the brows no higher than this (1: surprise)
ACOUSTIC_STRENGTH = 1.0     # loudness corrections of the phone targets (_acoustic_check) for
                            # speech the English recogniser does not know; off for English,
                            # where they cost 0.02-0.04 sync with real video
ENERGY_RANGE_DB = 24.0      # loudness below the speech's loud level at which openness is 0
ENERGY_PEAK_PCT = 90        # the loud level: this percentile of the speech's loudness
ENERGY_FLOOR = 0.5          # the jaw opens at least this × openness² (loud sound, open mouth)
VETO_OPENNESS = (0.5, 0.8)  # sustained openness over which lip closure fades out (from, to)
VETO_HOPS = 5               # "sustained": the quietest 10 ms hop within this many (50 ms)
BREATH_JAW = 0.15           # the lips part this much (jaw_open) to breathe in before speaking ...
BREATH_LEAD_S = 0.45        # ... over this long before the first sound ...
BREATH_PAUSE_S = 0.8        # ... after a pause at least this long


def is_english(language: str) -> bool:
    """Whether an ISO 639 ``language`` code (``en``, ``en-gb``...) names English."""
    return language == "en" or language.startswith("en-")


def expression_track(features: AudioFeatures, channels: tuple[str, ...], fps: float,
                     num_frames: int, scale: float = 1.0, language: str = "en") -> np.ndarray:
    """(T, C) float32 expression weights for the model's ``channels`` at ``fps``. Speech in a
    ``language`` other than English has its phone targets corrected by loudness."""
    times = np.arange(num_frames, dtype=np.float32) / fps  # frame k is shown from k / fps
    mouth = mouth_targets(features.phones, times)
    activity = frame_values(features.activity, features.rate, fps, num_frames)
    gate = gaussian_filter1d(np.clip(activity * 1.5, 0, 1), 0.8)
    if not is_english(language):
        mouth = _acoustic_check(mouth, features, fps, num_frames, ACOUSTIC_STRENGTH)
    jaw = mouth[:, TARGETS.index("jaw_open")] * _loudness_gain(features, fps, num_frames) * gate
    out = np.zeros((num_frames, len(channels)), dtype=np.float32)
    for k, name in enumerate(TARGETS):
        if name in channels:
            out[:, channels.index(name)] = mouth[:, k] * gate
    breath = _breaths(activity, fps) * (1 - gate) * (1 - mouth[:, TARGETS.index("closure")])
    out[:, channels.index("jaw_open")] = jaw + BREATH_JAW * breath
    out[:, channels.index("lip_close")] = mouth[:, TARGETS.index("closure")] * jaw
    if "brow_raise" in channels:
        out[:, channels.index("brow_raise")] = _brows(features, fps, num_frames)
    return out * np.float32(scale)


def _breaths(activity: np.ndarray, fps: float) -> np.ndarray:
    """(T,) in [0, 1]: the lips parting to breathe in during the BREATH_LEAD_S before speech
    resumes after a pause of BREATH_PAUSE_S or more (the video's start counts as a pause);
    ``activity`` (T,) speech activity per frame."""
    edges = np.diff(np.r_[0, (activity > 0.5).astype(np.int8)])
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    lead, pause = int(round(BREATH_LEAD_S * fps)), max(int(round(BREATH_PAUSE_S * fps)), 1)
    ramp = np.sin(np.linspace(0, np.pi / 2, lead + 1)[1:]) ** 2
    out = np.zeros(len(activity))
    for start in starts:
        before = stops[stops < start]
        if start - (before[-1] if len(before) else 0) >= pause:
            n = min(lead, start)
            out[start - n:start] = ramp[lead - n:]
    return out


def _acoustic_check(mouth: np.ndarray, features: AudioFeatures, fps: float,
                    num_frames: int, strength: float = 1.0) -> np.ndarray:
    """(T, K) mouth targets (T, K) corrected by loudness, whatever the language: a loud frame
    opens the jaw at least ENERGY_FLOOR × openness², and the lips cannot stay closed through
    sound that stays loud for VETO_HOPS hops (a real /p b m/ always dips). Aimed at the English
    phone recogniser's misplaced vowels and bilabials on other languages; ``strength`` in
    [0, 1] scales both corrections."""
    out = mouth.copy()
    jaw, closure = TARGETS.index("jaw_open"), TARGETS.index("closure")
    openness = _energy_openness(features, fps, num_frames)
    out[:, jaw] = np.maximum(out[:, jaw], strength * ENERGY_FLOOR * openness ** 2)
    sustained = _energy_openness(features, fps, num_frames, VETO_HOPS)
    lo, hi = VETO_OPENNESS
    out[:, closure] *= 1 - strength * np.clip((sustained - lo) / (hi - lo), 0, 1)
    return out


def _energy_openness(features: AudioFeatures, fps: float, num_frames: int,
                     hops: int = 1) -> np.ndarray:
    """(T,) openness in [0, 0.8] from frame loudness (dB) relative to the speech's loud level:
    0 at ENERGY_RANGE_DB below it, 0.8 at it. ``hops`` > 1 first takes the quietest 10 ms hop
    within a window of that many hops (sound that stays loud)."""
    hop_db = features.loudness
    if hop_db.size:
        hop_db = minimum_filter1d(hop_db, hops)
    loud = frame_values(hop_db, features.rate, fps, num_frames)
    speech = features.loudness[features.activity > 0.5]
    peak = np.percentile(speech, ENERGY_PEAK_PCT) if speech.size else -20.0
    openness = np.clip((loud - (peak - ENERGY_RANGE_DB)) / ENERGY_RANGE_DB, 0, 1)
    return (0.8 * openness).astype(np.float32)


def _loudness_gain(features: AudioFeatures, fps: float, num_frames: int) -> np.ndarray:
    """(T,) jaw gain from the loudness of the current phrase relative to the speaker's level."""
    loud = frame_values(features.loudness, features.rate, fps, num_frames)
    speech = features.loudness[features.activity > 0.5]
    level = np.percentile(speech, SPEECH_LEVEL_PCT) if speech.size else -30.0
    voiced = frame_values(features.activity, features.rate, fps, num_frames) > 0.5
    sigma = LOUDNESS_SMOOTH_S * fps
    weight = gaussian_filter1d(voiced.astype(np.float64), sigma)
    phrase = gaussian_filter1d(np.where(voiced, loud, 0.0), sigma) / np.maximum(weight, 1e-3)
    gain = 1.0 + LOUDNESS_SLOPE * (np.where(weight > 1e-3, phrase, level) - level)
    return np.clip(gain, *JAW_GAIN_RANGE).astype(np.float32)


def brow_lift(frames: np.ndarray, fps: float) -> np.ndarray:
    """One accent's brow raise (0..1) ``frames`` (int array) after it starts: up to its peak
    over BROW_RISE_S (sin²), then relaxing with time constant BROW_FALL_S."""
    peak = _brow_peak(fps)
    k = np.asarray(frames, np.float64)
    rising = np.sin(np.pi / 2 * np.minimum(k, peak) / peak) ** 2
    return np.where(k <= peak, rising, np.exp(-(k - peak) / (BROW_FALL_S * fps)))


def _brow_peak(fps: float) -> int:
    """Frames from a brow raise's start to its peak (BROW_RISE_S, at least one)."""
    return max(int(round(BROW_RISE_S * fps)), 1)


def _brows(features: AudioFeatures, fps: float, num_frames: int) -> np.ndarray:
    """(T,) brow raise: held a little while speaking, lifting just before each phrase, and
    raised briefly on the most stressed syllables (at most one every BROW_GAP_S)."""
    activity = frame_values(features.activity, features.rate, fps, num_frames)
    lead = int(round(BROW_LEAD_S * fps))
    speaking = gaussian_filter1d(np.r_[activity[lead:], np.full(min(lead, num_frames), activity[-1:])],
                                 BROW_SMOOTH_S * fps)
    onsets = frame_values(features.onsets, features.rate, fps, num_frames)
    pitch = frame_values(features.pitch, features.rate, fps, num_frames)
    impulses = accent_impulses(stress(onsets * activity, pitch), fps, BROW_GAP_S, BROW_MIN_SHARE)
    peak = _brow_peak(fps)
    raises = gestures(impulses, brow_lift(np.arange(peak + int(3 * BROW_FALL_S * fps) + 1), fps), peak)
    return np.clip(BROW_SPEAKING * speaking + BROW_ACCENT * raises, 0, BROW_MAX).astype(np.float32)
