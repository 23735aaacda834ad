"""Timed ARPAbet phones from speech with PocketSphinx 5 (US-English acoustic model).

``recognize_phones`` decodes free phone sequences (allphone search with the phone language model);
``align_phones`` force-aligns a transcript and falls back to recognition wherever the transcript
does not fit the audio. Both return contiguous phones covering ``[0, duration]`` in seconds,
labelled without stress (``"AA"``, ``"P"``), silence and noise as ``"SIL"``.

Each call builds its own decoders, so results do not depend on earlier calls.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator

import numpy as np
import pocketsphinx

from talkinghead.audio.features import SAMPLE_RATE, iter_16k, speech_activity
from talkinghead.types import Phone, Waveform

log = logging.getLogger(__name__)

ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH".split()
)
"""The 39 ARPAbet phones of the acoustic model; every other unit becomes ``"SIL"``."""

FRAME_RATE = 100.0
"""PocketSphinx frames per second."""
FRAME_DELAY = 0.008
"""Seconds from frame index to boundary time: frame i's 25.6 ms window is centred 12.8 ms after
``i / 100``, and a boundary before frame i lies half a hop before that centre."""
MAX_CHUNK_SECONDS = 20.0
"""Longest stretch decoded at once by ``recognize_phones``."""
MAX_ALIGN_SECONDS = 60.0
"""Longer audio is recognized rather than aligned."""
DITHER = 1e-3
"""RMS of the seeded noise added before decoding (about -60 dBFS)."""
_SILENCE_DB = -65.0
"""A chunk whose loudest 10 ms stays under this (dBFS) is silence and is not decoded."""
_BAD_WORD_SCORE = -50.0
"""Mean per-frame alignment score (normalised to the best senone) under which a word does not fit."""
_BAD_SHARE = 0.5
"""Share of badly fitting frames over which the whole transcript is rejected."""
_MAX_PHONE_SECONDS = 0.6
"""A non-silence aligned phone longer than this marks its word as not fitting."""
_MAX_SIL_SPEECH = 0.3
"""Seconds of detected speech (and over half its length) that an aligned silence may not hold."""

_RECOGNIZE_CONFIG = dict(lw=1.0, beam=1e-8, pbeam=1e-8, wbeam=1e-15, maxhmmpf=3000, topn=2)
"""Allphone search settings, tuned for speed on two cores with little loss in boundaries. Beams
of 1e-8 (not 1e-10) leave the phones of the eight real recordings in ../shared/data unchanged
(99.9-100 % of 10 ms frames) and decode 15 % faster; 1e-6 loses a seventh of the /p b m/."""


def _model_path(*parts: str) -> str:
    """Path inside pocketsphinx's bundled model folder."""
    return os.path.join(pocketsphinx.get_model_path(), *parts)


def _quiet_logs() -> None:
    """Silence pocketsphinx's own logging (it prints to stderr by default)."""
    try:
        pocketsphinx.set_loglevel("FATAL")
    except ValueError:
        pass


def _recognizer() -> pocketsphinx.Decoder:
    """A fresh allphone decoder (phone bigram LM); ~10 ms to build.

    Fresh per utterance because a used decoder carries state (cepstral mean, top Gaussians) into
    the next one, which would make results depend on call history.
    """
    _quiet_logs()
    return pocketsphinx.Decoder(
        hmm=_model_path("en-us", "en-us"),
        allphone=_model_path("en-us", "en-us-phone.lm.bin"),
        lm=None,
        dict=None,
        logfn=os.devnull,
        **_RECOGNIZE_CONFIG,
    )


def _aligner() -> pocketsphinx.Decoder:
    """A fresh word-alignment decoder with the CMU dictionary (~0.1 s; bestpath off: required)."""
    _quiet_logs()
    return pocketsphinx.Decoder(
        hmm=_model_path("en-us", "en-us"),
        dict=_model_path("en-us", "cmudict-en-us.dict"),
        lm=None,
        bestpath=False,
        logfn=os.devnull,
    )


def _frame_time(frame: int) -> float:
    """Seconds of the boundary before decoder frame ``frame`` (0 stays 0)."""
    return frame / FRAME_RATE + FRAME_DELAY if frame > 0 else 0.0


def _label(unit: str) -> str:
    """ARPAbet label without stress for a decoder unit; fillers and noises -> ``"SIL"``."""
    base = unit.strip().upper().rstrip("012")
    return base if base in ARPABET else "SIL"


def _to_pcm(x: np.ndarray) -> bytes:
    """16 kHz float samples (n,) -> little-endian int16 bytes, quiet audio raised to ~0.5 peak.

    A fixed, seeded noise floor (``DITHER`` RMS) is added: digital silence otherwise gives the
    cepstral mean a huge negative energy and wrecks recognition of everything else.
    """
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    gain = min(8.0, 0.5 / peak) if 0.0 < peak < 0.5 else 1.0
    noise = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * DITHER
    return (np.clip(x * gain + noise, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _hop_db(x: np.ndarray) -> np.ndarray:
    """Level of each 10 ms hop of 16 kHz samples (n,) in dBFS, mean removed: (n // 160,)."""
    hops = x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float64)
    hops = hops - hops.mean(axis=1, keepdims=True)
    return 10.0 * np.log10(np.mean(hops * hops, axis=1) + 1e-12)


def _quiet_cut(x: np.ndarray, lo: int, hi: int) -> int:
    """Sample index in ``[lo, hi)`` of x (n,) at the middle of the quietest 100 ms: a cut point."""
    db = _hop_db(x[lo:hi])
    if len(db) < 10:
        return hi
    smooth = np.convolve(db, np.ones(10) / 10.0, mode="valid")
    return lo + (int(np.argmin(smooth)) + 5) * 160


class PieceCutter:
    """16 kHz audio pushed in chunks → pieces of at most ``max_seconds`` (the first at most
    ``first_seconds``, if given), each cut at the quietest 100 ms of its second half.

    The cuts depend on the audio only, never on how it was chunked; only one piece plus the
    last chunk is held at a time.
    """

    def __init__(self, max_seconds: float = MAX_CHUNK_SECONDS, first_seconds: float | None = None):
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self.limit = int((first_seconds or max_seconds) * SAMPLE_RATE)
        self.held: list[np.ndarray] = []  # the audio not given out yet, in chunks
        self.length = 0
        self.offset = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add (n,) float32 samples; the pieces now complete: (start sample, samples (m,))."""
        self.held.append(np.asarray(samples, np.float32))
        self.length += len(self.held[-1])
        if self.length <= self.limit:
            return []
        buffer, pieces = np.concatenate(self.held), []
        while len(buffer) > self.limit:
            cut = _quiet_cut(buffer, self.limit // 2, self.limit)
            pieces.append((self.offset, buffer[:cut]))
            buffer, self.offset = buffer[cut:], self.offset + cut
            self.limit = self.max_samples
        self.held, self.length = [buffer], len(buffer)
        return pieces

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """The last piece (the audio not yet given out), if any."""
        rest = np.concatenate(self.held) if self.held else np.zeros(0, np.float32)
        self.held, self.length = [], 0
        return [(self.offset, rest)] if len(rest) else []


def _chunks(wave: Waveform, max_seconds: float = MAX_CHUNK_SECONDS,
            first_seconds: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``PieceCutter`` pieces of ``wave`` (resampled to 16 kHz): (start sample, samples (n,))."""
    cutter = PieceCutter(max_seconds, first_seconds)
    for block in iter_16k(wave, block_seconds=max_seconds / 4):
        yield from cutter.push(block)
    yield from cutter.flush()


def _decode(decoder: pocketsphinx.Decoder, pcm: bytes) -> None:
    """Run one whole utterance through ``decoder``."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _recognize_chunk(x: np.ndarray, offset: float) -> list[Phone]:
    """Allphone-decode 16 kHz samples (n,) starting at ``offset`` seconds -> phones (seconds)."""
    if len(x) < 160 or float(np.max(_hop_db(x), initial=-120.0)) < _SILENCE_DB:
        return [Phone("SIL", offset, offset + len(x) / SAMPLE_RATE)]
    decoder = _recognizer()
    _decode(decoder, _to_pcm(x))
    segments = decoder.seg()  # None when the utterance was too short to decode
    if segments is None:
        return [Phone("SIL", offset, offset + len(x) / SAMPLE_RATE)]
    return [
        Phone(_label(seg.word), offset + _frame_time(seg.start_frame), offset + _frame_time(seg.end_frame + 1))
        for seg in segments
    ]


def tidy_phones(phones: Iterable[Phone], duration: float) -> tuple[Phone, ...]:
    """Make phones contiguous over ``[0, duration]``: sorted, clipped, overlaps trimmed, gaps
    given to the phone before (a leading or trailing gap over 30 ms becomes SIL), empty phones
    dropped, neighbouring SILs merged."""
    duration = max(float(duration), 0.0)
    out: list[Phone] = []
    for ph in sorted(phones, key=lambda p: p.start):
        cursor = out[-1].end if out else 0.0
        start, end = min(max(ph.start, cursor), duration), min(ph.end, duration)
        if end <= start + 1e-9:
            continue
        if start > cursor + 1e-9:
            out[-1:] = [Phone(out[-1].label, out[-1].start, start)] if out else [Phone("SIL", 0.0, start)]
        if out and out[-1].label == "SIL" == ph.label:
            out[-1] = Phone("SIL", out[-1].start, end)
        else:
            out.append(Phone(ph.label, start, end))
    if not out:
        return (Phone("SIL", 0.0, duration),)
    last = out[-1]
    if last.end < duration and (last.label == "SIL" or duration - last.end <= 0.03):
        out[-1] = Phone(last.label, last.start, duration)
    elif last.end < duration:
        out.append(Phone("SIL", last.end, duration))
    return tuple(out)


def recognize_phones(wave: Waveform) -> tuple[Phone, ...]:
    """Free phone recognition of ``wave`` -> contiguous phones covering ``[0, duration]`` s.

    Audio longer than 20 s is decoded in pieces cut at quiet points; memory stays flat.
    Silence (or no audio) gives one ``"SIL"`` phone.
    """
    phones: list[Phone] = []
    for start, x in _chunks(wave):
        phones.extend(_recognize_chunk(x, start / SAMPLE_RATE))
    return tidy_phones(phones, wave.duration)


def recognize_piece(samples: np.ndarray, start: float) -> tuple[Phone, ...]:
    """Phones of one piece of 16 kHz audio (n,) that begins ``start`` seconds into the
    recording: contiguous over [start, start + n / 16000], timed in seconds of the recording."""
    length = len(samples) / SAMPLE_RATE
    local = tidy_phones(_recognize_chunk(samples, 0.0), length)
    return tuple(Phone(p.label, p.start + start, p.end + start) for p in local)


# --- transcript normalisation -------------------------------------------------------------

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at ", "=": " equals "}


def _below_thousand(n: int) -> list[str]:
    """Words for 0 < n < 1000."""
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
    if n:
        words.append(_ONES[n])
    return words


def number_words(n: int) -> list[str]:
    """English words for a non-negative integer (years 1100..1999 read as "nineteen ninety")."""
    if n == 0:
        return ["zero"]
    if 1100 <= n <= 1999 and n % 100:
        return _below_thousand(n // 100) + (["oh"] if n % 100 < 10 else []) + _below_thousand(n % 100)
    words: list[str] = []
    for scale, name in _SCALES:
        if n >= scale:
            words += number_words(n // scale) + [name]
            n %= scale
    return words + (_below_thousand(n) if n else [])


def _spell_number(match: re.Match[str]) -> str:
    """Regex callback: digits (optionally with a decimal part) -> words."""
    whole, _, frac = match.group(0).replace(",", "").partition(".")
    words = number_words(int(whole)) if len(whole) < 13 else [_ONES[int(d)] for d in whole]
    if frac:
        words += ["point"] + [_ONES[int(d)] for d in frac]
    return " " + " ".join(words) + " "


def normalize_transcript(text: str) -> list[str]:
    """Transcript -> lowercase dictionary-style words: numbers spelled out, punctuation dropped,
    inner apostrophes kept (``"Don't stop, 2 cats!"`` -> ``["don't", "stop", "two", "cats"]``)."""
    for sym, word in _SYMBOLS.items():
        text = text.replace(sym, word)
    text = re.sub(r"\d[\d,]*(?:\.\d+)?", _spell_number, text.lower())
    text = re.sub(r"[^a-z']+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


# --- letters to sounds for words missing from the dictionary -------------------------------

_LETTER_RULES = (
    ("tion", "SH AH N"), ("igh", "AY"), ("sch", "S K"), ("tch", "CH"), ("ch", "CH"), ("sh", "SH"),
    ("th", "TH"), ("ph", "F"), ("wh", "W"), ("ng", "NG"), ("ck", "K"), ("qu", "K W"), ("ee", "IY"),
    ("ea", "IY"), ("oo", "UW"), ("ai", "EY"), ("ay", "EY"), ("oa", "OW"), ("ou", "AW"), ("ow", "OW"),
    ("oi", "OY"), ("oy", "OY"), ("au", "AO"), ("aw", "AO"), ("ie", "IY"), ("ey", "IY"), ("er", "ER"),
    ("ir", "ER"), ("ur", "ER"), ("ar", "AA R"), ("or", "AO R"), ("ce", "S"), ("ci", "S IH"),
    ("cy", "S IY"), ("ge", "JH"), ("x", "K S"), ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"),
    ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"), ("i", "IH"), ("j", "JH"), ("k", "K"),
    ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"),
    ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("y", "IY"), ("z", "Z"), ("'", ""),
)


def guess_pronunciation(word: str) -> str:
    """Rough ARPAbet for an unknown lowercase word by letter rules (``"zorp"`` -> ``"Z AO R P"``).

    Good enough to locate the word in time; its phones are then taken from recognition.
    """
    stem = word[:-1] if len(word) > 3 and word.endswith("e") else word
    phones: list[str] = []
    i = 0
    while i < len(stem):
        if i and stem[i] == stem[i - 1] and stem[i] not in "aeiou":
            i += 1
            continue
        for letters, sound in _LETTER_RULES:
            if stem.startswith(letters, i):
                phones += sound.split()
                i += len(letters)
                break
        else:
            i += 1
    return " ".join(phones) or "AH"


# --- forced alignment ----------------------------------------------------------------------

_Word = tuple[str, int, int, list[tuple[str, int, int, int]]]
"""An aligned word: (name, start frame, frames, phones as (name, start frame, frames, score))."""
_MIN_PIECE = 0.015
"""Recognized phones clipped to a replaced span shorter than this (s) are dropped."""

def _prepare_words(decoder: pocketsphinx.Decoder, words: list[str]) -> set[str]:
    """Add unknown words to the aligner's dictionary with guessed pronunciations; return them."""
    guessed = {w for w in words if decoder.lookup_word(w) is None}
    for w in sorted(guessed):
        try:
            decoder.add_word(w, guess_pronunciation(w), update=True)
        except RuntimeError as exc:  # the alignment then fails and falls back to recognition
            log.debug("could not add %r to the dictionary: %s", w, exc)
    if guessed:
        log.warning("words not in the pronunciation dictionary, phones recognized instead: %s",
                    ", ".join(sorted(guessed)))
    return guessed


def _run_alignment(decoder: pocketsphinx.Decoder, pcm: bytes, words: list[str]) -> list[_Word] | None:
    """Two-pass forced alignment -> aligned words (silences included), or None if it fails.

    Phone scores are acoustic log-likelihoods relative to the best senone of each frame (0 best,
    more negative worse), in the decoder's log units.
    """
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        if decoder.hyp() is None:
            return None
        decoder.set_alignment()
        _decode(decoder, pcm)
        alignment = decoder.get_alignment()
    except RuntimeError as exc:
        log.debug("alignment failed: %s", exc)
        return None
    if alignment is None:
        return None
    return [
        (w.name, w.start, w.duration, [(p.name, p.start, p.duration, p.score) for p in w])
        for w in alignment.words()
    ]


def _word_fits(word: _Word, guessed: set[str], active: np.ndarray) -> bool:
    """Whether an aligned word matches its audio: known word, decent score, no stretched phone,
    and (for silence) not laid over speech. ``active``: (F,) bool speech presence per frame."""
    name, start, frames, phones = word
    if name in guessed:
        return False
    if name.startswith(("<", "[", "+")):
        speech = int(np.count_nonzero(active[start:start + frames]))
        if speech > _MAX_SIL_SPEECH * FRAME_RATE and speech > 0.5 * frames:
            return False
    score = sum(p[3] for p in phones) / max(frames, 1)
    stretched = any(_label(p[0]) != "SIL" and p[2] / FRAME_RATE > _MAX_PHONE_SECONDS for p in phones)
    return score >= _BAD_WORD_SCORE and not stretched


def _splice(words: list[_Word], fits: list[bool], wave: Waveform) -> list[Phone]:
    """Aligned phones of fitting words plus recognized phones over the spans of the others."""
    phones: list[Phone] = []
    spans: list[tuple[float, float]] = []
    for word, ok in zip(words, fits):
        if ok:
            phones += [Phone(_label(p[0]), _frame_time(p[1]), _frame_time(p[1] + p[2])) for p in word[3]]
        else:
            spans.append((_frame_time(word[1]), _frame_time(word[1] + word[2])))
    if spans:
        for ph in recognize_phones(wave):
            for lo, hi in spans:
                start, end = max(ph.start, lo), min(ph.end, hi)
                if end - start >= _MIN_PIECE:
                    phones.append(Phone(ph.label, start, end))
    return phones


def align_phones(wave: Waveform, transcript: str) -> tuple[Phone, ...]:
    """Phones of ``transcript`` force-aligned to ``wave`` -> contiguous phones over ``[0, duration]``.

    Words missing from the dictionary and stretches the transcript does not fit are filled from
    ``recognize_phones``; if the transcript fits badly overall, or the audio is longer than 60 s,
    or there are no words, the whole result is recognized. Never raises for a mismatch; warns.
    """
    words = normalize_transcript(transcript)
    if not words:
        log.warning("empty transcript: recognizing phones instead")
        return recognize_phones(wave)
    if wave.duration > MAX_ALIGN_SECONDS:
        log.warning("audio longer than %.0f s: recognizing phones instead of aligning", MAX_ALIGN_SECONDS)
        return recognize_phones(wave)
    x = np.concatenate(list(iter_16k(wave)) or [np.zeros(0, np.float32)])
    if len(x) < 1600 or float(np.max(_hop_db(x), initial=-120.0)) < _SILENCE_DB:
        log.warning("no speech to align the transcript to")
        return recognize_phones(wave)
    decoder = _aligner()
    guessed = _prepare_words(decoder, words)
    aligned = _run_alignment(decoder, _to_pcm(x), words)
    if aligned is None:
        log.warning("transcript could not be aligned to the audio: recognizing phones instead")
        return recognize_phones(wave)
    active = speech_activity(_hop_db(x)) > 0.5
    fits = [_word_fits(w, guessed, active) for w in aligned]
    bad = sum(w[2] for w, ok in zip(aligned, fits) if not ok and w[0] not in guessed)
    if bad > _BAD_SHARE * sum(w[2] for w in aligned):
        log.warning("transcript does not match the audio: recognizing phones instead")
        return recognize_phones(wave)
    if bad:
        log.warning("parts of the transcript do not match the audio: recognized there instead")
    return tidy_phones(_splice(aligned, fits, wave), wave.duration)
