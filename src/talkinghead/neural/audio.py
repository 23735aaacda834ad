"""SadTalker's audio front-end (the Wav2Lip mel spectrogram), in numpy, no librosa.

Numbers (SADTALKER.md §3): 16 kHz, pre-emphasis 0.97, STFT n_fft 800 / hop 200 / periodic Hann
window 800 with the signal centred by zero padding (librosa 0.9.2, the pinned version, pads
with zeros), |STFT| → 80 Slaney mel bands 55–7600 Hz
(Slaney-normalised), 20·log10(max(1e-5, ·)) − 20 dB, mapped symmetrically onto [−4, 4] and
clipped. 80 mel frames per second; video frame i (25 fps) sees the 16 mel frames starting at
int(80·(i−2)/25), indices clamped to the spectrogram.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FPS = 25
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS = 4.0
WINDOW_FRAMES = 16


def video_frame_count(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Number of whole video frames the audio covers (SadTalker drops the partial last one)."""
    return int(num_samples / (sample_rate / fps))


def fit_to_frames(samples: np.ndarray, num_frames: int) -> np.ndarray:
    """Crop or zero-pad ``samples`` (N,) to exactly ``num_frames`` video frames of audio."""
    length = int(num_frames * (SAMPLE_RATE / FPS))
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def preemphasis(samples: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """y[n] = x[n] − k·x[n−1], y[0] = x[0]; float64 (N,)."""
    x = np.asarray(samples, dtype=np.float64)
    y = x.copy()
    y[1:] -= k * x[:-1]
    return y


def stft_magnitude(signal: np.ndarray) -> np.ndarray:
    """|STFT| of a float64 signal (N,), centred by zero padding → (401, 1 + N // 200)."""
    padded = np.pad(signal, N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(count)[:, None]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WIN) / WIN)
    return np.abs(np.fft.rfft(padded[index] * window, n=N_FFT, axis=1)).T


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


def mel_basis() -> np.ndarray:
    """Slaney-normalised triangular filters (80, 401) float32, as librosa.filters.mel builds them."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def normalize_db(db: np.ndarray) -> np.ndarray:
    """dB (already minus the reference level) → [−4, 4], symmetric, clipped."""
    scaled = (2 * MAX_ABS) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS
    return np.clip(scaled, -MAX_ABS, MAX_ABS)


def mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono samples (N,) → normalised log-mel frames (1 + N // 200, 80) float64."""
    magnitude = stft_magnitude(preemphasis(samples))
    mel = np.dot(mel_basis(), magnitude)
    floor = np.exp(MIN_LEVEL_DB / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(floor, mel)) - REF_LEVEL_DB
    return normalize_db(db).T


def frame_windows(mel: np.ndarray, num_frames: int) -> np.ndarray:
    """Per video frame, the 16 mel frames it sees: (F, 80) → (T, 80, 16).

    Frame i starts at int(80·(i−2)/25) (truncated toward zero, as Python's int does); every
    index is clamped to 0..F−1.
    """
    starts = np.trunc(80.0 * ((np.arange(num_frames) - 2) / float(FPS))).astype(np.int64)
    index = np.clip(starts[:, None] + np.arange(WINDOW_FRAMES)[None, :], 0, len(mel) - 1)
    return np.transpose(mel[index], (0, 2, 1))


def speech_windows(samples: np.ndarray) -> np.ndarray:
    """16 kHz samples → (T, 80, 16) float32 mel windows, one per 25 fps video frame."""
    num_frames = video_frame_count(len(samples))
    mel = mel_spectrogram(fit_to_frames(samples, num_frames))
    return frame_windows(mel, num_frames).astype(np.float32)
