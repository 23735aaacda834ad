"""Audio → expression channels (the role of SadTalker's ExpNet), per video frame."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..audio.features import frame_values
from ..types import AudioFeatures
from .coarticulation import mouth_targets
from .visemes import TARGETS

SPEECH_LEVEL_PCT = 60
LOUDNESS_SLOPE = 0.035      # jaw gain per dB of phrase loudness around the speaker's level
LOUDNESS_SMOOTH_S = 0.6     # phrase-level loudness: whisper vs shout, not syllable by syllable
JAW_GAIN_RANGE = (0.55, 1.3)
BROW_PER_SEMITONE = 0.08


def expression_track(features: AudioFeatures, channels: tuple[str, ...], fps: float,
                     num_frames: int, scale: float = 1.0) -> np.ndarray:
    """(T, C) float32 expression weights for the model's ``channels`` at ``fps``."""
    times = np.arange(num_frames, dtype=np.float32) / fps  # frame k is shown from k / fps
    mouth = mouth_targets(features.phones, times)
    activity = frame_values(features.activity, features.rate, fps, num_frames)
    gate = gaussian_filter1d(np.clip(activity * 1.5, 0, 1), 0.8)
    jaw = mouth[:, TARGETS.index("jaw_open")] * _loudness_gain(features, fps, num_frames) * gate
    out = np.zeros((num_frames, len(channels)), dtype=np.float32)
    for k, name in enumerate(TARGETS):
        if name in channels:
            out[:, channels.index(name)] = mouth[:, k] * gate
    out[:, channels.index("jaw_open")] = jaw
    out[:, channels.index("lip_close")] = mouth[:, TARGETS.index("closure")] * jaw
    if "brow_raise" in channels:
        out[:, channels.index("brow_raise")] = _brow_accents(features, fps, num_frames)
    return out * np.float32(scale)


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


def _brow_accents(features: AudioFeatures, fps: float, num_frames: int) -> np.ndarray:
    """(T,) small brow raises on pitch accents (F0 well above the speaker's median)."""
    pitch = frame_values(features.pitch, features.rate, fps, num_frames)
    voiced = pitch > 0
    if voiced.sum() < 5:
        return np.zeros(num_frames, dtype=np.float32)
    semis = np.where(voiced, 12 * np.log2(np.maximum(pitch, 1) / np.median(pitch[voiced])), 0)
    accent = np.clip(semis - 2.0, 0, 6) * BROW_PER_SEMITONE
    return gaussian_filter1d(accent, fps * 0.12).astype(np.float32)
