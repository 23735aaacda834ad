"""Emotions layered on speech: a held facial expression (smile, brows, lip tension), a head
bearing and a change of head-motion energy, faded in over the first half second.

Speech keeps priority on the lips: a smile relaxes while the lips round (OW, UW, W) or close.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import MotionConfig

FADE_IN_S = 0.5
ROUNDING = ("lip_pucker", "lip_funnel", "lip_close")


@dataclass(frozen=True)
class Emotion:
    """``expression``: channel weights at strength 1; ``pitch_deg``: held head pitch (positive
    = chin down); ``motion_gain``: multiplies head-motion amplitude; ``blink_gain``: multiplies
    the blink rate; ``speech_brows``: multiplies the brow raises of speech (a frown holds the
    brows down)."""

    expression: dict[str, float] = field(default_factory=dict)
    pitch_deg: float = 0.0
    motion_gain: float = 1.0
    blink_gain: float = 1.0
    speech_brows: float = 1.0

    def gains(self, strength: float) -> tuple[float, float]:
        """(head-motion, blink-rate) multipliers at ``strength``."""
        return 1 + (self.motion_gain - 1) * strength, 1 + (self.blink_gain - 1) * strength


EMOTION_PROFILES: dict[str, Emotion] = {
    "neutral": Emotion(),
    "happy": Emotion({"smile": 0.9, "lip_stretch": 0.15, "brow_raise": 0.15}, -1.0, 1.25, 1.0),
    "sad": Emotion({"smile": -0.45, "brow_raise": 0.35, "brow_lower": 0.25, "lip_press": 0.3},
                   3.5, 0.6, 0.8, 0.4),
    "surprised": Emotion({"brow_raise": 1.0, "upper_lip_raise": 0.2, "lip_funnel": 0.15},
                         -2.5, 1.1, 0.6),
    "angry": Emotion({"brow_lower": 1.0, "lip_press": 0.6, "lip_stretch": 0.2, "smile": -0.2},
                     2.0, 0.9, 1.2, 0.2),
}


def emotion_profile(name: str) -> Emotion:
    """The profile of one of the named emotions; ``ValueError`` for an unknown name."""
    if name not in EMOTION_PROFILES:
        raise ValueError(f"emotion must be one of {', '.join(EMOTION_PROFILES)}, got {name!r}")
    return EMOTION_PROFILES[name]


def configured_emotion(config: MotionConfig) -> tuple[Emotion, float]:
    """The profile that ``config`` asks for and its strength (0 for neutral)."""
    strength = config.emotion_strength if config.emotion != "neutral" else 0.0
    return emotion_profile(config.emotion), strength


def apply_emotion(expression: np.ndarray, channels: tuple[str, ...], fps: float,
                  emotion: Emotion, strength: float, first_frame: int = 0) -> np.ndarray:
    """(T, C) float32 speech ``expression`` with the emotion's held expression added; its
    rows are the video's frames from ``first_frame`` on (a live stream's block)."""
    out = expression.astype(np.float32).copy()
    if not emotion.expression or strength == 0 or len(out) == 0:
        return out
    envelope = fade_in(len(out), fps, first_frame) * np.float32(strength)
    if "brow_raise" in channels:
        damp = np.clip(envelope, 0, 1) * (1 - emotion.speech_brows)
        out[:, channels.index("brow_raise")] *= 1 - damp
    rounding = np.zeros(len(out), np.float32)
    for name in ROUNDING:
        if name in channels:
            rounding = np.maximum(rounding, out[:, channels.index(name)])
    for name, weight in emotion.expression.items():
        if name not in channels:
            continue
        value = envelope * weight
        if name == "smile":
            value = value * (1 - 0.6 * np.clip(rounding, 0, 1))
        k = channels.index(name)
        out[:, k] += value
        if name == "brow_raise":  # speech raises the brows no higher than a full raise
            out[:, k] = np.minimum(out[:, k], np.maximum(value, 1.0))
    return out


def fade_in(n: int, fps: float, first_frame: int = 0) -> np.ndarray:
    """(n,) a smooth ramp from 0 to 1 over the video's first FADE_IN_S, at its frames
    ``first_frame`` .. ``first_frame + n - 1``."""
    t = np.clip((first_frame + np.arange(n)) / max(FADE_IN_S * fps, 1.0), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)
