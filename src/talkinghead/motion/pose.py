"""Audio → head pose (the role of SadTalker's PoseVAE): a seeded, style-conditioned generator
driven by prosody — nods on stressed onsets, sway while speaking, stillness in pauses.

A style fixes amplitudes per axis, tempo and nod strength; the seed fixes the particular
motion. Pose is (T, 6): pitch, yaw, roll (radians, relative to the photo), x, y, z (IOD).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter, sosfiltfilt, butter

from ..audio.features import frame_values
from ..config import NUM_POSE_STYLES
from ..types import AudioFeatures

MAX_ANGLE = np.radians([20.0, 25.0, 15.0])
PAUSE_CALM = 0.45
NOD_KERNEL_S = 0.45


@dataclass(frozen=True)
class PoseStyle:
    """Amplitudes (degrees, std) for pitch, yaw, roll; ``tempo`` Hz (low-pass cutoff of the
    drift); ``nod``: degrees of pitch per unit onset strength; ``sway``: IOD of lateral drift."""

    amplitude: tuple[float, float, float]
    tempo: float
    nod: float
    sway: float


def pose_style(index: int) -> PoseStyle:
    """One of NUM_POSE_STYLES styles; 0 is a calm, typical speaker. Deterministic per index."""
    if not 0 <= index < NUM_POSE_STYLES:
        raise ValueError(f"pose style must be 0..{NUM_POSE_STYLES - 1}, got {index}")
    if index == 0:
        return PoseStyle((2.0, 3.0, 1.2), 0.5, 2.5, 0.015)
    rng = np.random.default_rng(7919 * index)
    energy = 0.5 + 1.5 * (index % 4) / 3
    axes = rng.dirichlet([2.0, 2.0, 1.2]) * 3
    amp = tuple(float(a) for a in np.clip(axes * 1.6 * energy + 0.4, 0.4, 8.0))
    return PoseStyle(amp, float(0.25 + 0.12 * (index % 7)), float(rng.uniform(0.5, 5.0) * energy),
                     float(rng.uniform(0.0, 0.03) * energy))


def pose_track(features: AudioFeatures, fps: float, num_frames: int, style: PoseStyle,
               rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """(T, 6) float32 head pose driven by the speech's prosody."""
    pose = np.zeros((num_frames, 6), dtype=np.float64)
    if num_frames == 0 or scale == 0:
        return pose.astype(np.float32)
    activity = frame_values(features.activity, features.rate, fps, num_frames)
    calm = PAUSE_CALM + (1 - PAUSE_CALM) * gaussian_filter1d(activity, fps * 0.6)
    for axis in range(3):
        drift = _band_noise(rng, num_frames, fps, style.tempo)
        pose[:, axis] = np.radians(style.amplitude[axis]) * drift * calm
    onsets = frame_values(features.onsets, features.rate, fps, num_frames)
    pose[:, 0] += np.radians(style.nod) * _nods(onsets * activity, fps)
    pose[:, 3] = style.sway * _band_noise(rng, num_frames, fps, style.tempo * 0.5) * calm
    pose[:, 4] = 0.25 * pose[:, 0]
    pose = _smooth(pose, fps) * scale
    pose[:, :3] = np.clip(pose[:, :3], -MAX_ANGLE, MAX_ANGLE)
    return pose.astype(np.float32)


def _band_noise(rng: np.random.Generator, n: int, fps: float, cutoff: float) -> np.ndarray:
    """(n,) low-passed Gaussian noise with unit standard deviation."""
    pad = int(fps * 4)
    noise = rng.standard_normal(n + 2 * pad)
    sos = butter(2, min(cutoff / (fps / 2), 0.95), output="sos")
    smooth = sosfiltfilt(sos, noise)[pad:pad + n]
    return smooth / max(float(smooth.std()), 1e-6) if n > 1 else smooth


def _nods(strength: np.ndarray, fps: float) -> np.ndarray:
    """(T,) downward nods (positive pitch) following the strongest onsets."""
    peaks = np.where((strength > 0.15) & (strength >= np.roll(strength, 1))
                     & (strength >= np.roll(strength, -1)), strength, 0.0)
    t = np.arange(int(NOD_KERNEL_S * fps) + 1) / fps
    kernel = np.sin(np.pi * t / NOD_KERNEL_S) * np.exp(-t / NOD_KERNEL_S)
    return np.convolve(peaks, kernel)[:len(strength)]


def _smooth(pose: np.ndarray, fps: float) -> np.ndarray:
    """Savitzky–Golay smoothing (about half a second, order 2), as SadTalker smooths its pose."""
    window = int(fps * 0.52) | 1
    if len(pose) <= window:
        return pose
    return savgol_filter(pose, window, 2, axis=0)
