"""Tests of talkinghead.audio.tts: eSpeak NG synthesis and phone timings."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from talkinghead.audio import tts
from talkinghead.audio.tts import (
    Speech,
    demo_sentence,
    espeak_to_arpabet,
    phones_from_marks,
    synthesize,
)
from talkinghead.errors import AudioError
from talkinghead.types import Phone

ARPABET = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH", "SIL",
}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
PANGRAMS = [
    "The quick brown fox jumps over the lazy dog.",
    "Sphinx of black quartz, judge my vow.",
    "Thoughtful fathers gather in the north; their youth usually chose pure measure and beige "
    "leisure.",
    "Where are the boys? The oil boy is here, our hour, fire and tower, bottle, button, singing.",
    "I couldn't go to the cinema at four thirty. Father's car, bird, word, church, judge, loch.",
    "Science, idea, area, museum, create, naive, the apple, to eat, books, put, sure, hair, near.",
]


@pytest.fixture(scope="module")
def demo() -> Speech:
    return synthesize(demo_sentence())


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_demo_waveform(demo: Speech) -> None:
    wave = demo.waveform
    assert wave.sample_rate == 22050
    assert wave.samples.dtype == np.float32 and wave.samples.ndim == 1
    assert 6.0 < wave.duration < 9.0
    assert np.abs(wave.samples).max() <= 1.0 and rms(wave.samples) > 0.02


def test_phones_are_ordered_contiguous_and_cover_the_audio(demo: Speech) -> None:
    phones = demo.phones
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(demo.waveform.duration)
    for phone, following in zip(phones, phones[1:]):
        assert phone.end > phone.start
        assert phone.end == following.start
    assert all(not (a.label == b.label == "SIL") for a, b in zip(phones, phones[1:]))
    assert {p.label for p in phones} <= ARPABET


def test_demo_has_lip_closures_and_open_vowels(demo: Speech) -> None:
    labels = [p.label for p in demo.phones]
    assert labels.count("P") >= 3 and labels.count("B") >= 3 and labels.count("M") >= 6
    assert {"AA", "AE", "AY"} <= set(labels)
    assert labels[0] == labels[-1] == "SIL"
    assert labels[:5] == ["SIL", "HH", "AH", "L", "OW"]


def test_sound_during_vowels_quiet_during_pauses(demo: Speech) -> None:
    wave = demo.waveform

    def level(phone: Phone) -> float:
        middle = (phone.start + phone.end) / 2
        span = max((phone.end - phone.start) / 4, 0.005)
        lo, hi = (int((middle + d) * wave.sample_rate) for d in (-span, span))
        return rms(wave.samples[lo:hi])

    vowels = [level(p) for p in demo.phones if p.label in VOWELS and p.end - p.start > 0.04]
    pauses = [level(p) for p in demo.phones[1:-1] if p.label == "SIL"]
    assert len(vowels) > 15 and len(pauses) >= 3
    assert min(vowels) > 0.01
    assert max(pauses) < 0.1 * np.median(vowels)


def test_deterministic(demo: Speech) -> None:
    again = synthesize(demo_sentence())
    np.testing.assert_array_equal(again.waveform.samples, demo.waveform.samples)
    assert again.phones == demo.phones


def test_worker_marks_are_sample_positions() -> None:
    samples, rate, marks = tts._run_worker({"text": "Papa, my map.", "voice": "en-us", "wpm": 150})
    assert rate == 22050 and samples.dtype == np.int16
    starts = [sample for sample, _ in marks]
    assert starts == sorted(starts) and starts[-1] == samples.size


def test_all_mnemonics_of_ordinary_english_are_mapped() -> None:
    seen = set()
    for text in PANGRAMS:
        _, _, marks = tts._run_worker({"text": text, "voice": "en-us", "wpm": 175})
        seen |= {m.lstrip(tts._STRESS_MARKS) for _, m in marks}
    unmapped = {m for m in seen if not m.startswith("_") and m not in tts._ARPABET}
    assert not unmapped
    assert len(seen) > 50


def test_faster_speech_is_shorter() -> None:
    slow = synthesize("Come and meet me by the pool.", words_per_minute=120)
    fast = synthesize("Come and meet me by the pool.", words_per_minute=300)
    assert fast.waveform.duration < 0.7 * slow.waveform.duration
    assert [p.label for p in fast.phones if p.label != "SIL"] == [
        p.label for p in slow.phones if p.label != "SIL"]


@pytest.mark.parametrize("mnemonic, labels", [
    ("p", ("P",)), ("b", ("B",)), ("m", ("M",)), ("'aI", ("AY",)), (",oU", ("OW",)),
    ("'a", ("AE",)), ("'A:", ("AA",)), ("@2", ("AH",)), ("3:", ("ER",)), ("dZ", ("JH",)),
    ("T", ("TH",)), ("D", ("DH",)), ("N", ("NG",)), ("t#", ("T",)), ("_:", ("SIL",)),
    ("_", ("SIL",)), ("'A@", ("AA", "R")), ("@L", ("AH", "L")), ("l/2", ("L",)),
    ("l/3", ("L",)), ("q", ("HH",)), ("u#", ("AH",)),
])
def test_espeak_to_arpabet(mnemonic: str, labels: tuple[str, ...]) -> None:
    assert espeak_to_arpabet(mnemonic) == labels


def test_phones_from_marks_splits_merges_and_pads() -> None:
    marks = [(100, "h"), (200, "'A@"), (300, "_:"), (350, "_"), (400, "'u:"), (480, "l"),
             (480, "_:"), (500, "_")]
    phones = phones_from_marks(marks, 500, 100)
    assert [(p.label, p.start, p.end) for p in phones] == [
        ("SIL", 0.0, 1.0), ("HH", 1.0, 2.0), ("AA", 2.0, 2.5), ("R", 2.5, 3.0),
        ("SIL", 3.0, 4.0), ("UW", 4.0, 4.54), ("L", 4.54, 4.8), ("SIL", 4.8, 5.0),
    ]


def test_linking_r_not_doubled() -> None:
    phones = phones_from_marks([(0, "f"), (10, "'A@"), (30, "r-"), (40, "I")], 50, 10)
    assert [p.label for p in phones] == ["F", "AA", "R", "IH"]


def test_bad_requests() -> None:
    with pytest.raises(ValueError):
        synthesize("   ")
    with pytest.raises(ValueError):
        synthesize("hello", words_per_minute=10)
    with pytest.raises(AudioError, match="no voice"):
        synthesize("hello", voice="xx-not-a-voice")


def test_missing_library_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak.so")
    with pytest.raises(tts._EngineError, match="cannot load the eSpeak NG library"):
        tts._load_library()


def test_worker_failures_become_audio_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    report = "import json; print(json.dumps({'error': 'cannot load the eSpeak NG library'}))"
    monkeypatch.setattr(tts, "_worker_command", lambda: [sys.executable, "-c", report])
    with pytest.raises(AudioError, match="cannot load the eSpeak NG library"):
        synthesize("hello")
    monkeypatch.setattr(tts, "_worker_command", lambda: [sys.executable, "-c", "import no_such"])
    with pytest.raises(AudioError, match="synthesis failed.*no_such"):
        synthesize("hello")
