"""Lips from noisy recordings: how far background noise moves the file path's lip sync.

eSpeak speech with known phone timing (the sentences of ``benchmarks/stream_lips.py``) is mixed
with noise at a given signal-to-noise ratio (speech power over its voiced samples against the
noise's power) and animated by the file path (``Pipeline.prepare``, phones recognized from the
noisy audio). The mesh's own inner-lip gap is scored against the true phones as in
``stream_lips.py``: /p b m/ closed, open vowels open, /t d k g n/ closed (false closures).

Noises: ``white`` (seeded Gaussian), ``hum`` (50 Hz mains hum with its harmonics, as cheap
microphones pick up), and ``music`` (a song from ../shared/data/audio, when present).

    python benchmarks/noisy_lips.py
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from stream_lips import EXTRA, file_gaps, scores
from talkinghead import Pipeline
from talkinghead.audio.tts import synthesize
from talkinghead.evaluation.synthetic import SENTENCES
from talkinghead.media import load_audio, load_image
from talkinghead.samples import demo_portrait_path
from talkinghead.types import Waveform

MUSIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "imagine.wav"
SNRS_DB = (20.0, 10.0, 5.0)


def noise(kind: str, count: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(count,) float64 noise of unit power."""
    if kind == "white":
        n = rng.standard_normal(count)
    elif kind == "hum":
        t = np.arange(count) / sample_rate
        n = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 8))
    else:
        song = load_audio(MUSIC, sample_rate=sample_rate).samples
        start = int(rng.integers(0, max(1, len(song) - count)))
        n = np.resize(song[start:], count).astype(np.float64)
    return n / np.sqrt(np.mean(n ** 2))


def mixed(samples: np.ndarray, kind: str, snr_db: float, sample_rate: int,
          rng: np.random.Generator) -> np.ndarray:
    """``samples`` (n,) with ``kind`` noise at ``snr_db`` below the speech's voiced power."""
    voiced = samples[np.abs(samples) > 0.01]
    power = float(np.mean(voiced.astype(np.float64) ** 2))
    gain = np.sqrt(power / 10 ** (snr_db / 10))
    return (samples + gain * noise(kind, len(samples), sample_rate, rng)).astype(np.float32)


def row(pipeline: Pipeline, portrait, speeches, kind: str | None, snr: float | None) -> np.ndarray:
    """Mean (p/b/m closed, open vowels open, t/d/k/g/n closed) over ``speeches`` with ``kind``
    noise at ``snr`` dB (None: clean)."""
    rng = np.random.default_rng(0)
    rows = []
    for speech in speeches:
        wave = speech.waveform
        if kind is not None:
            wave = Waveform(mixed(wave.samples, kind, snr, wave.sample_rate, rng), wave.sample_rate)
        rows.append(scores(file_gaps(pipeline, portrait, replace(speech, waveform=wave)), speech.phones))
    return np.nanmean(np.array(rows), axis=0)


def main() -> None:
    portrait = load_image(demo_portrait_path())
    pipeline = Pipeline()
    speeches = [synthesize(s) for s in SENTENCES + EXTRA]
    kinds = ("white", "hum") + (("music",) if MUSIC.is_file() else ())
    print(f"{'noise':6s} {'SNR dB':>6s} {'p/b/m':>6s} {'vowels':>6s} {'t/d/k/g/n':>9s}")
    cases = [(None, None)] + [(kind, snr) for kind in kinds for snr in SNRS_DB]
    for kind, snr in cases:
        mean = row(pipeline, portrait, speeches, kind, snr)
        label = "-" if snr is None else f"{snr:.0f}"
        print(f"{kind or 'clean':6s} {label:>6s} {mean[0]:6.2f} {mean[1]:6.2f} {mean[2]:9.2f}", flush=True)


if __name__ == "__main__":
    main()
