"""Tests of talkinghead.audio.phones: recognition and forced alignment with PocketSphinx.

Speech with exact phone timings comes from eSpeak NG (talkinghead.audio.tts); those tests skip
when the synthesizer is unavailable. Real recordings are used when ../shared/data exists.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from talkinghead.audio.phones import (
    ARPABET,
    _chunks,
    align_phones,
    guess_pronunciation,
    normalize_transcript,
    number_words,
    recognize_phones,
)
from talkinghead.types import Phone, Waveform

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SENTENCES = (
    "Papa bought a big map, and my mom baked bread.",
    "Please pass the butter and the warm bread.",
    "Come and meet me by the pool.",
    "Maybe my mother made marmalade before breakfast.",
    "The quick brown fox jumps over the lazy dog.",
)
BILABIALS = frozenset({"P", "B", "M"})
RD31 = ("holidays are a time of celebrating with loved ones enjoying the festivities and melinda "
        "was back to school but for many this year has been")


def _synthesize():
    tts = pytest.importorskip("talkinghead.audio.tts")
    if not hasattr(tts, "synthesize"):
        pytest.skip("talkinghead.audio.tts.synthesize is not available")
    return tts.synthesize


@pytest.fixture(scope="module")
def speech() -> list:
    """Synthesized sentences: objects with ``.waveform`` and exact ``.phones``."""
    synthesize = _synthesize()
    return [synthesize(text) for text in SENTENCES]


def assert_covers(phones: tuple[Phone, ...], duration: float) -> None:
    """Contiguous, non-empty, valid labels, over exactly [0, duration]."""
    assert phones and phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(duration, abs=1e-6)
    for a, b in zip(phones, phones[1:]):
        assert a.end == pytest.approx(b.start, abs=1e-9)
    assert all(p.end > p.start for p in phones) or len(phones) == 1
    assert all(p.label in ARPABET or p.label == "SIL" for p in phones)


def speech_only(phones: tuple[Phone, ...]) -> list[Phone]:
    return [p for p in phones if p.label != "SIL"]


def read_wave(name: str) -> Waveform:
    import soundfile as sf

    x, sr = sf.read(DATA / "audio" / name, dtype="float32", always_2d=True)
    return Waveform(x.mean(axis=1), sr)


def test_recognized_phones_cover_audio(speech: list) -> None:
    for s in speech:
        assert_covers(recognize_phones(s.waveform), s.waveform.duration)


def test_recognized_bilabials_near_true_ones(speech: list) -> None:
    hits = total = 0
    for s in speech:
        found = [p.start for p in recognize_phones(s.waveform) if p.label in BILABIALS]
        for p in s.phones:
            if p.label in BILABIALS:
                total += 1
                hits += bool(found) and min(abs(p.start - q) for q in found) <= 0.06
    assert total >= 20
    assert hits / total >= 0.4


def test_recognition_is_deterministic(speech: list) -> None:
    wave = speech[0].waveform
    assert recognize_phones(wave) == recognize_phones(wave)


def test_aligned_boundaries_match_truth(speech: list) -> None:
    errors = []
    for text, s in zip(SENTENCES, speech):
        aligned = align_phones(s.waveform, text)
        assert_covers(aligned, s.waveform.duration)
        truth, got = speech_only(s.phones), speech_only(aligned)
        assert len(truth) == len(got), text
        errors += [abs(a.start - b.start) for a, b in zip(truth, got)]
    assert np.median(errors) < 0.03


def test_wrong_transcript_still_covers_audio(speech: list, caplog: pytest.LogCaptureFixture) -> None:
    wave = speech[0].waveform
    for text in ("the quick brown fox jumps over the lazy dog", "papa bought", "zorblax quux", "!!!"):
        with caplog.at_level(logging.WARNING, logger="talkinghead.audio.phones"):
            phones = align_phones(wave, text)
        assert_covers(phones, wave.duration)
        assert len(speech_only(phones)) >= 10
    assert caplog.records, "a fallback must be logged"


def test_unknown_word_is_filled_by_recognition(speech: list, caplog: pytest.LogCaptureFixture) -> None:
    s = speech[1]
    with caplog.at_level(logging.WARNING, logger="talkinghead.audio.phones"):
        phones = align_phones(s.waveform, SENTENCES[1].replace("butter", "bluttertonk"))
    assert_covers(phones, s.waveform.duration)
    assert any("bluttertonk" in r.getMessage() for r in caplog.records)
    assert [p.label for p in speech_only(phones)[:7]] == "P L IY Z P AE S".split()


def test_silence_gives_one_sil() -> None:
    for n, sr in ((48000, 48000), (10, 16000), (0, 16000)):
        wave = Waveform(np.zeros(n, np.float32), sr)
        assert recognize_phones(wave) == (Phone("SIL", 0.0, wave.duration),)
        assert align_phones(wave, "hello world") == (Phone("SIL", 0.0, wave.duration),)


def test_chunks_cut_at_quiet_points_and_cover_all() -> None:
    sr = 16000
    t = np.arange(50 * sr) / sr
    loud = (np.floor(t / 0.7) % 2 == 0).astype(np.float32)  # 0.7 s on, 0.7 s off
    x = 0.3 * loud * np.sin(2 * np.pi * 200 * t).astype(np.float32)
    pieces = list(_chunks(Waveform(x, sr), max_seconds=6.0))
    assert len(pieces) >= 9
    starts = [s for s, _ in pieces]
    assert starts[0] == 0 and sum(len(p) for _, p in pieces) == len(x)
    assert all(len(p) <= 6 * sr for _, p in pieces)
    assert all(s2 == s1 + len(p) for (s1, p), s2 in zip(pieces, starts[1:]))
    assert all(loud[s] == 0 for s in starts[1:]), "cuts must fall in silence"


def test_long_audio_is_chunked_with_correct_offsets(speech: list) -> None:
    sr = speech[0].waveform.sample_rate
    pause = np.zeros(int(0.5 * sr), np.float32)
    parts, truth, offset = [], [], 0.0
    while offset < 42.0:
        for s in speech:
            parts += [s.waveform.samples, pause]
            truth += [Phone(p.label, p.start + offset, p.end + offset) for p in s.phones]
            offset += s.waveform.duration + 0.5
    wave = Waveform(np.concatenate(parts), sr)
    phones = recognize_phones(wave)
    assert_covers(phones, wave.duration)
    hop = np.arange(0, wave.duration, 0.01)

    def voiced(ph: list[Phone]) -> np.ndarray:
        on = np.zeros(len(hop), bool)
        for p in ph:
            if p.label != "SIL":
                on[(hop >= p.start) & (hop < p.end)] = True
        return on

    agree = voiced(truth) == voiced(list(phones))
    late = hop > 25.0
    assert agree.mean() > 0.85 and agree[late].mean() > 0.85


def test_normalize_transcript() -> None:
    assert normalize_transcript("Don't stop, 2 cats!") == ["don't", "stop", "two", "cats"]
    assert normalize_transcript("It's 1999 & 3.5%") == [
        "it's", "nineteen", "ninety", "nine", "and", "three", "point", "five", "percent"]
    assert normalize_transcript("'Quoted' well-known") == ["quoted", "well", "known"]
    assert normalize_transcript(" ... ") == []
    assert number_words(1_200_017) == ["one", "million", "two", "hundred", "thousand", "seventeen"]
    assert number_words(2024) == ["two", "thousand", "twenty", "four"]


def test_guess_pronunciation_uses_arpabet() -> None:
    for word in ("zorblax", "thinking", "quixotry", "mcbride", "x"):
        phones = guess_pronunciation(word).split()
        assert phones and all(p in ARPABET for p in phones)
    assert guess_pronunciation("bomb").split()[0] == "B"


@pytest.mark.skipif(not (DATA / "audio").is_dir(), reason="shared test data absent")
def test_real_english_alignment_and_speed() -> None:
    wave = read_wave("RD_Radio31_000.wav")
    start = time.perf_counter()
    recognized = recognize_phones(wave)
    elapsed = time.perf_counter() - start
    assert_covers(recognized, wave.duration)
    assert elapsed < 0.3 * wave.duration
    aligned = align_phones(wave, RD31)
    assert_covers(aligned, wave.duration)
    labels = [p.label for p in speech_only(aligned)]
    assert labels[:6] == ["HH", "AA", "L", "AH", "D", "EY"]
    assert len(labels) > 80


@pytest.mark.skipif(not (DATA / "audio").is_dir(), reason="shared test data absent")
@pytest.mark.parametrize("name", ["fayu.wav", "chinese_news.wav"])
def test_real_foreign_speech_is_recognized(name: str) -> None:
    wave = read_wave(name)
    phones = recognize_phones(wave)
    assert_covers(phones, wave.duration)
    assert len(speech_only(phones)) > 4 * wave.duration
