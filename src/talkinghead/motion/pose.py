"""Audio → head pose (the role of SadTalker's PoseVAE): a seeded, style-conditioned generator
driven by prosody — nods on stressed onsets, sway while speaking, stillness in pauses.

A style fixes amplitudes per axis, tempo and nod strength; the seed fixes the particular
motion. Pose is (T, 6): pitch, yaw, roll (radians, relative to the photo), x, y, z (IOD).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.dsp import butter2, filtfilt, gaussian_filter1d, savgol2
from ..audio.features import frame_values
from ..config import NUM_POSE_STYLES
from ..types import AudioFeatures
from .accents import accent_impulses, gestures, stress

MAX_ANGLE = np.radians([20.0, 25.0, 15.0])
PAUSE_CALM = 0.2           # motion speed in a long pause, relative to speech
AMPLITUDE_IN_PAUSE = 0.7   # ... and how far the head strays from rest there
CALM_SMOOTH_S = 0.3
NOD_KERNEL_S = 0.45
NOD_GAP_S = 0.7            # at most one nod per this many seconds
NOD_MIN_SHARE = 0.6        # ... on syllables at least this stressed (share of a typical one)


@dataclass(frozen=True)
class PoseStyle:
    """Amplitudes (degrees, std) for pitch, yaw, roll; ``tempo`` Hz (low-pass cutoff of the
    drift); ``nod``: degrees of pitch per unit onset strength; ``sway``: IOD of lateral drift."""

    amplitude: tuple[float, float, float]
    tempo: float
    nod: float
    sway: float


# the 45 styles after style 0 are every combination of these three factors
ENERGY = (0.5, 1.4, 2.3)                 # × style 0's amplitudes
TEMPO_HZ = (0.25, 0.5, 0.9)
AXES = (                                  # (pitch, yaw, roll) amplitude gains, nod gain, sway gain
    ((1.0, 1.0, 1.0), 1.0, 1.0),          # balanced
    ((0.6, 1.7, 0.7), 0.5, 1.5),          # turner: looks left and right
    ((1.6, 0.6, 0.7), 2.0, 0.5),          # nodder: up and down, strong nods
    ((0.7, 0.8, 2.2), 0.7, 1.0),          # tilter: rolls the head
    ((0.5, 1.1, 1.4), 0.3, 3.0),          # swayer: lateral drift, few nods
)
TYPICAL = PoseStyle((2.0, 3.0, 1.2), 0.5, 2.5, 0.015)
BREATH_HZ = (0.22, 0.3)                   # 13–18 breaths a minute
BREATH_PITCH_DEG = 0.35
BREATH_RISE_IOD = 0.006


def pose_style(index: int) -> PoseStyle:
    """One of NUM_POSE_STYLES styles; 0 is a calm, typical speaker. Deterministic per index.

    Styles 1..45 combine an energy (amplitude ×0.5, ×1.4, ×2.3 of style 0), a tempo (0.25,
    0.5, 0.9 Hz) and a preferred axis set (balanced, turner, nodder, tilter, swayer):
    style = 1 + energy + 3·tempo + 9·axes.
    """
    if not 0 <= index < NUM_POSE_STYLES:
        raise ValueError(f"pose style must be 0..{NUM_POSE_STYLES - 1}, got {index}")
    if index == 0:
        return TYPICAL
    i = index - 1
    energy, tempo = ENERGY[i % 3], TEMPO_HZ[(i // 3) % 3]
    gains, nod, sway = AXES[i // 9]
    amp = tuple(float(a * g * energy) for a, g in zip(TYPICAL.amplitude, gains))
    return PoseStyle(amp, tempo, TYPICAL.nod * nod * energy, TYPICAL.sway * sway * energy)


def free_view(degrees: tuple[float, ...], num_frames: int) -> np.ndarray:
    """(T,) float32 radians: ``degrees`` spread evenly over the frames, linearly interpolated
    (SadTalker's ``--input_yaw`` etc.); one value holds still; none gives zeros."""
    if not degrees:
        return np.zeros(num_frames, np.float32)
    knots = np.linspace(0, max(num_frames - 1, 0), len(degrees))
    return np.radians(np.interp(np.arange(num_frames), knots, degrees)).astype(np.float32)


def breathing(rng: np.random.Generator, fps: float, num_frames: int) -> np.ndarray:
    """(T, 6) float32 pose of slow breathing: the head rises and tips slightly on each breath."""
    t = np.arange(num_frames) / fps
    rate = rng.uniform(*BREATH_HZ) * (1 + 0.08 * _band_noise(rng, num_frames, fps, 0.05))
    phase = 2 * np.pi * np.cumsum(rate) / fps + rng.uniform(0, 2 * np.pi)
    wave = np.sin(phase) if len(t) else phase
    out = np.zeros((num_frames, 6), np.float32)
    out[:, 0] = np.radians(BREATH_PITCH_DEG) * 0.5 * wave
    out[:, 4] = -BREATH_RISE_IOD * wave
    return out


def pose_track(features: AudioFeatures, fps: float, num_frames: int, style: PoseStyle,
               rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """(T, 6) float32 head pose driven by the speech's prosody."""
    pose = np.zeros((num_frames, 6), dtype=np.float64)
    if num_frames == 0 or scale == 0:
        return pose.astype(np.float32)
    activity = frame_values(features.activity, features.rate, fps, num_frames)
    calm = PAUSE_CALM + (1 - PAUSE_CALM) * gaussian_filter1d(activity, fps * CALM_SMOOTH_S)
    clock = np.cumsum(calm) - calm[0]       # motion time: runs slow in pauses
    amount = AMPLITUDE_IN_PAUSE + (1 - AMPLITUDE_IN_PAUSE) * calm
    for axis in range(3):
        drift = _slowed(_band_noise(rng, num_frames, fps, style.tempo), clock)
        pose[:, axis] = np.radians(style.amplitude[axis]) * drift * amount
    onsets = frame_values(features.onsets, features.rate, fps, num_frames)
    pitch = frame_values(features.pitch, features.rate, fps, num_frames)
    pose[:, 0] += np.radians(style.nod) * _nods(stress(onsets * activity, pitch), fps)
    sway = _slowed(_band_noise(rng, num_frames, fps, style.tempo * 0.5), clock)
    pose[:, 3] = style.sway * sway * amount
    pose[:, 4] = 0.25 * pose[:, 0]
    pose = _smooth(pose, fps) * scale
    pose[:, :3] = np.clip(pose[:, :3], -MAX_ANGLE, MAX_ANGLE)
    return pose.astype(np.float32)


def _slowed(signal: np.ndarray, clock: np.ndarray) -> np.ndarray:
    """(T,) ``signal`` (T,) read at motion time ``clock`` (T,) frames, which lags in pauses."""
    return np.interp(clock, np.arange(len(signal)), signal)


def _band_noise(rng: np.random.Generator, n: int, fps: float, cutoff: float) -> np.ndarray:
    """(n,) low-passed Gaussian noise with unit standard deviation."""
    pad = int(fps * 4)
    noise = rng.standard_normal(n + 2 * pad)
    smooth = filtfilt(butter2(min(cutoff / (fps / 2), 0.95)), noise)[pad:pad + n]
    return smooth / max(float(smooth.std()), 1e-6) if n > 1 else smooth


def _nods(syllables: np.ndarray, fps: float) -> np.ndarray:
    """(T,) downward nods (positive pitch, peak 1 for a typical stressed syllable) whose
    lowest point falls on the most stressed of the (T,) ``syllables`` (stress), at most one
    every NOD_GAP_S."""
    t = np.arange(int(NOD_KERNEL_S * fps) + 1) / fps
    kernel = np.sin(np.pi * t / NOD_KERNEL_S) * np.exp(-t / NOD_KERNEL_S)
    apex = int(np.argmax(kernel))  # the head is lowest, and still, on the stressed syllable
    impulses = accent_impulses(syllables, fps, NOD_GAP_S, NOD_MIN_SHARE)
    return gestures(impulses, kernel / kernel.max(), apex)


def _smooth(pose: np.ndarray, fps: float) -> np.ndarray:
    """Savitzky–Golay smoothing (about half a second, order 2), as SadTalker smooths its pose."""
    window = int(fps * 0.52) | 1
    if len(pose) <= window:
        return pose
    return savgol2(pose, window, axis=0)
