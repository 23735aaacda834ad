"""Stressed syllables, where speakers place their gestures: head nods and brow raises."""
from __future__ import annotations

import numpy as np

from ..audio.dsp import gaussian_filter1d

ACCENT_PER_SEMITONE = 0.15
MIN_STRESS = 0.15


def stress(onsets: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(T,) syllable stress: onset strength (T,), boosted where the pitch (T,) Hz, 0 where
    unvoiced, rises above the median (an accent)."""
    voiced = pitch > 0
    if voiced.sum() < 5:
        return onsets
    semis = np.where(voiced, 12 * np.log2(np.maximum(pitch, 1) / np.median(pitch[voiced])), 0)
    accent = gaussian_filter1d(np.clip(semis, 0, 4), 2.0)
    return onsets * (1 + ACCENT_PER_SEMITONE * accent)


def accent_impulses(stress: np.ndarray, fps: float, gap_s: float, min_share: float) -> np.ndarray:
    """(T,) impulses on the most stressed syllables of a (T,) ``stress`` track, strongest first,
    at most one per ``gap_s`` seconds, each at least ``min_share`` of a typical stressed
    syllable (the 80th percentile of the stress peaks); 1 for a typical one, at most 1.5."""
    peaks = np.nonzero((stress > MIN_STRESS) & (stress >= np.roll(stress, 1))
                       & (stress >= np.roll(stress, -1)))[0]
    impulses = np.zeros(len(stress))
    if len(peaks) == 0:
        return impulses
    typical = float(np.percentile(stress[peaks], 80))
    gap = int(gap_s * fps)
    for i in peaks[np.argsort(-stress[peaks], kind="stable")]:
        if stress[i] >= min_share * typical and not impulses[max(0, i - gap):i + gap + 1].any():
            impulses[i] = min(stress[i] / typical, 1.5)
    return impulses


def gestures(impulses: np.ndarray, kernel: np.ndarray, apex: int) -> np.ndarray:
    """(T,) the (K,) ``kernel`` laid at each of the (T,) ``impulses``, scaled by it, with the
    kernel's sample ``apex`` on the impulse."""
    return np.convolve(impulses, kernel)[apex:apex + len(impulses)]
