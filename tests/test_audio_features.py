"""Tests of talkinghead.audio.features on synthetic signals with known on/off times and pitch."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from talkinghead.audio.features import compute_features, frame_values, iter_16k
from talkinghead.types import Phone, Waveform

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPANS = ((0.5, 1.2), (1.7, 2.3), (3.0, 3.4))
"""Burst on/off times in seconds."""


def harmonic(f0: float, n: int, sr: int, amp: float = 0.5) -> np.ndarray:
    """``n`` samples of a voiced-like tone: f0 plus six harmonics with 1/k amplitudes, float64."""
    t = np.arange(n) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 8))
    return amp * x / np.max(np.abs(x))


def bursts(sr: int, kind: str = "tone", seconds: float = 4.0) -> np.ndarray:
    """Bursts at ``SPANS`` over a -80 dBFS noise floor: (n,) float64 at ``sr``."""
    rng = np.random.default_rng(0)
    x = 1e-4 * rng.standard_normal(int(seconds * sr))
    for lo, hi in SPANS:
        a, b = int(lo * sr), int(hi * sr)
        x[a:b] += harmonic(150.0, b - a, sr) if kind == "tone" else 0.2 * rng.standard_normal(b - a)
    return x


def edges(activity: np.ndarray, rate: float) -> list[tuple[float, float]]:
    """(on, off) seconds of runs where activity > 0.5."""
    on = np.concatenate([[False], activity > 0.5, [False]]).astype(np.int8)
    change = np.flatnonzero(np.diff(on))
    return [(change[i] / rate, change[i + 1] / rate) for i in range(0, len(change), 2)]


def features(x: np.ndarray, sr: int):
    return compute_features(Waveform(np.asarray(x, dtype=np.float32), sr), ())


@pytest.mark.parametrize("sr", [16000, 44100, 22050])
@pytest.mark.parametrize("kind", ["tone", "noise"])
def test_activity_edges_within_30ms(sr: int, kind: str) -> None:
    f = features(bursts(sr, kind), sr)
    found = edges(f.activity, f.rate)
    assert len(found) == len(SPANS)
    for (on, off), (lo, hi) in zip(found, SPANS):
        assert abs(on - lo) <= 0.03 and abs(off - hi) <= 0.03


def test_loudness_is_rms_db() -> None:
    sr = 16000
    t = np.arange(2 * sr) / sr
    x = np.where((t >= 0.5) & (t < 1.5), 0.5 * np.sin(2 * np.pi * 220 * t), 0.0)
    f = features(x, sr)
    inside = f.loudness[60:140]
    assert np.allclose(inside, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.3)
    assert np.all(f.loudness[:45] <= -99.0) and np.all(f.loudness >= -100.0)


def test_dc_offset_clipping_and_gain_do_not_change_activity() -> None:
    sr = 16000
    x = bursts(sr)
    reference = edges(features(x, sr).activity, 100.0)
    for y in (np.clip(3.0 * x + 0.4, -1, 1), 0.02 * x, np.clip(8.0 * x, -1, 1) - 0.3):
        f = features(y, sr)
        got = edges(f.activity, f.rate)
        assert len(got) == len(reference)
        assert np.max(np.abs(np.array(got) - np.array(reference))) <= 0.03
    quiet = features(np.clip(3.0 * x + 0.4, -1, 1), sr).loudness[10:40]
    assert np.all(quiet < -60.0), "the DC offset must not count as loudness"


@pytest.mark.parametrize("n", [0, 1, 100, 159, 160, 161, 16000])
def test_silence_and_tiny_inputs(n: int) -> None:
    f = features(np.zeros(n), 16000)
    frames = -(-n // 160)
    for arr in (f.loudness, f.activity, f.pitch, f.onsets):
        assert arr.shape == (frames,) and arr.dtype == np.float32
        assert np.all(np.isfinite(arr))
    assert np.all(f.activity == 0) and np.all(f.pitch == 0) and np.all(f.onsets == 0)
    assert np.all(f.loudness == -100.0)
    assert f.rate == 100.0 and f.duration == pytest.approx(n / 16000)


def test_phones_pass_through() -> None:
    phones = (Phone("SIL", 0.0, 0.5), Phone("AA", 0.5, 1.0))
    f = compute_features(Waveform(np.zeros(16000, np.float32), 16000), phones)
    assert f.phones == phones


@pytest.mark.parametrize("f0", [75.0, 110.0, 180.0, 260.0, 390.0])
def test_pitch_within_5_percent(f0: float) -> None:
    sr = 24000
    for x in (harmonic(f0, sr, sr), np.clip(4 * harmonic(f0, sr, sr) + 0.2, -1, 1)):
        pitch = features(x, sr).pitch[5:-5]
        assert np.mean(pitch > 0) > 0.95
        voiced = pitch[pitch > 0]
        assert np.all(np.abs(voiced / f0 - 1) < 0.05)


def test_noise_is_unvoiced() -> None:
    f = features(bursts(16000, "noise"), 16000)
    assert np.mean(f.pitch > 0) < 0.05


def test_onsets_peak_at_burst_starts() -> None:
    f = features(bursts(16000), 16000)
    assert np.all((f.onsets >= 0) & (f.onsets <= 1))
    peaks = [int(np.argmax(f.onsets[int(lo * 100) - 10:int(lo * 100) + 10])) - 10 for lo, _ in SPANS]
    assert all(abs(p) <= 3 for p in peaks)
    assert f.onsets[int(0.8 * 100):int(1.1 * 100)].max() < 0.05


def test_resampling_in_blocks_matches_whole() -> None:
    x = bursts(44100)[: 3 * 44100].astype(np.float32)
    blocks = np.concatenate(list(iter_16k(Waveform(x, 44100), block_seconds=0.37)))
    whole = resample_poly(x, 160, 441)
    assert len(blocks) == len(whole)
    assert np.max(np.abs(blocks - whole)) < 1e-5


def test_speed_under_002_real_time() -> None:
    sr = 16000
    x = np.tile(bursts(sr, seconds=4.0), 15).astype(np.float32)
    wave = Waveform(x, sr)
    start = time.perf_counter()
    compute_features(wave, ())
    assert time.perf_counter() - start < 0.02 * wave.duration


def test_frame_values_means_over_frame_spans() -> None:
    hops = np.arange(100, dtype=np.float32)  # 1 s at 100 Hz
    out = frame_values(hops, 100.0, 25.0, 25)
    assert out.shape == (25,)
    assert np.allclose(out, np.arange(25) * 4 + 1.5)
    longer = frame_values(hops, 100.0, 25.0, 30)
    assert np.allclose(longer[25:], 99.0), "past the end the last value holds"
    two = frame_values(np.stack([hops, -hops], axis=1), 100.0, 30.0, 10)
    assert two.shape == (10, 2) and np.allclose(two[:, 0], -two[:, 1])
    assert frame_values(np.zeros(0), 100.0, 25.0, 4).shape == (4,)
    assert frame_values(hops, 100.0, 25.0, 0).shape == (0,)


@pytest.mark.parametrize("seed", range(30))
def test_frame_values_keeps_constants(seed: int) -> None:
    rng = np.random.default_rng(seed)
    value, hops = rng.uniform(-5, 5), int(rng.integers(1, 300))
    fps, frames = rng.uniform(5, 120), int(rng.integers(1, 200))
    out = frame_values(np.full(hops, value), 100.0, fps, frames)
    assert out.shape == (frames,)
    assert np.allclose(out, value, atol=1e-4 * max(1.0, abs(value)))


@pytest.mark.parametrize("seed", range(25))
def test_any_short_input_gives_finite_bounded_tracks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sr = int(rng.choice([8000, 16000, 48000]))
    samples = rng.uniform(-2, 2, int(rng.integers(0, 900))) * rng.choice([0.0, 1e-3, 1.0])
    f = features(samples, sr)
    assert all(np.all(np.isfinite(a)) for a in (f.loudness, f.activity, f.pitch, f.onsets))
    assert np.all((f.activity >= 0) & (f.activity <= 1))
    assert np.all((f.pitch == 0) | ((f.pitch >= 65) & (f.pitch <= 420)))


@pytest.mark.skipif(not (DATA / "audio").is_dir(), reason="shared test data absent")
@pytest.mark.parametrize("name", ["RD_Radio31_000.wav", "fayu.wav", "chinese_news.wav"])
def test_real_speech(name: str) -> None:
    import soundfile as sf

    x, sr = sf.read(DATA / "audio" / name, dtype="float32", always_2d=True)
    f = features(x.mean(axis=1), sr)
    assert 0.5 < float(f.activity.mean()) < 0.98
    voiced = f.pitch[f.pitch > 0]
    assert len(voiced) > 0.15 * len(f.pitch)
    assert 80 < float(np.median(voiced)) < 350
    assert f.onsets.max() > 0.3
