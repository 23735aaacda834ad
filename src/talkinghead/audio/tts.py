"""Offline speech synthesis with eSpeak NG, with the exact timing of every phone.

The library is driven through ctypes (``espeakng_loader`` ships it with its data). eSpeak NG keeps
global state that drifts from one utterance to the next (its pitch-flutter index and oscillator
phase are never reset), so two calls in one process give slightly different samples. To make the
same text always give identical samples, ``synthesize`` runs every utterance in a fresh Python
process whose one engine is initialised once and used once; this costs a few tenths of a second.

Run as a script, this file is that worker: it reads a JSON request on stdin and writes one JSON
header line followed by little-endian int16 samples on stdout. It then imports only the standard
library, numpy and espeakng_loader, not the talkinghead package (whose ``__init__`` is heavy).
"""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __name__ != "__main__":  # the worker (this file run as a script) needs neither
    from talkinghead.errors import AudioError
    from talkinghead.types import Phone, Waveform

MIN_WPM, MAX_WPM = 80, 450
"""Speaking rates eSpeak NG accepts, in words per minute."""

DEMO_SENTENCE = (
    "Hello! My name is Grace. Papa bought a big map, and my mom baked bread. "
    "Come and meet me by the pool."
)


def demo_sentence() -> str:
    """The demo's text: about 7 s of speech, rich in p, b, m and open vowels."""
    return DEMO_SENTENCE


@dataclass(frozen=True)
class Speech:
    """Synthesized speech: the mono ``waveform`` and its ``phones`` (seconds, contiguous,
    covering 0..``waveform.duration``, ARPAbet labels without stress, silence ``"SIL"``)."""

    waveform: Waveform
    phones: tuple[Phone, ...]


# --------------------------------------------------------------------------------------------
# eSpeak NG mnemonics -> ARPAbet


_STRESS_MARKS = "'\",%=!"

_ARPABET: dict[str, tuple[str, ...]] = {
    # stops, fricatives, affricates
    "p": ("P",), "b": ("B",), "t": ("T",), "t#": ("T",), "t2": ("T",), "?": ("T",),
    "d": ("D",), "d#": ("D",), "k": ("K",), "g": ("G",), "g-": ("G",), "x": ("K",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "z#": ("Z",), "z/2": ("Z",), "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "C": ("HH",),
    "tS": ("CH",), "dZ": ("JH",),
    # nasals, liquids, glides
    "m": ("M",), "m-": ("M",), "n": ("N",), "n-": ("N",), "N": ("NG",),
    "l": ("L",), "l/": ("L",), "l/2": ("L",), "l-": ("L",),
    "r": ("R",), "r/": ("R",), "r-": ("R",), "w": ("W",), "w#": ("W",),
    "j": ("Y",), ";": ("Y",),
    # vowels
    "a": ("AE",), "a2": ("AE",), "aa": ("AE",), "a#": ("AH",), "a#2": ("AH",),
    "A:": ("AA",), "A#": ("AA",), "A~": ("AA",), "A@": ("AA", "R"),
    "0": ("AA",), "0#": ("AA",), "02": ("AH",), "O2": ("AO",),
    "O": ("AO",), "O:": ("AO",), "O~": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"),
    "o:": ("OW",), "oU": ("OW",), "oU#": ("OW",),
    "V": ("AH",), "U": ("UH",), "u:": ("UW",), "U@": ("UH", "R"),
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@-": ("AH",), "@#": ("AH",), "@L": ("AH", "L"),
    "3": ("ER",), "3:": ("ER",), "IR": ("ER",), "VR": ("ER",),
    "E": ("EH",), "E#": ("EH",), "E2": ("EH",), "e#": ("EH",), "e@": ("EH", "R"),
    "e:": ("EY",), "eI": ("EY",),
    "I": ("IH",), "I2": ("IH",), "I#": ("IH",), "I2#": ("IH",),
    "i": ("IY",), "i:": ("IY",), "i@": ("IY", "AH"), "i@3": ("IH", "R"),
    "aI": ("AY",), "aI@": ("AY", "AH"), "aI3": ("AY", "ER"),
    "aU": ("AW",), "aU@": ("AW", "ER"), "OI": ("OY",),
}
_VOWEL_LETTERS = frozenset("aeiouAEIOUV@03")


def espeak_to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """ARPAbet labels (no stress) for one eSpeak NG English phoneme mnemonic, e.g. ``"'aI"``.

    Pauses give ``("SIL",)``. R-coloured vowels and diphthongs with a schwa give two labels
    (``"A@"`` -> AA R). Unknown mnemonics fall back to their longest known prefix, then to AH
    (vowel-like) or HH (anything else).
    """
    name = mnemonic.lstrip(_STRESS_MARKS)
    if not name or name.startswith("_") or name in ("||", "<"):
        return ("SIL",)
    for end in range(len(name), 0, -1):
        labels = _ARPABET.get(name[:end])
        if labels is not None:
            return labels
    return ("AH",) if name[0] in _VOWEL_LETTERS else ("HH",)


def phones_from_marks(
    marks: list[tuple[int, str]], num_samples: int, sample_rate: int
) -> tuple[Phone, ...]:
    """Timed ARPAbet phones from eSpeak NG phoneme events.

    ``marks``: (start sample, mnemonic) in time order; each phone ends where the next starts, the
    last at ``num_samples``. Leading audio before the first mark becomes SIL; zero-length phones
    are dropped; adjacent SILs are merged. Times in seconds.
    """
    spans = _label_spans(marks, num_samples)
    if not spans or spans[0][0] > 0:
        spans.insert(0, (0, spans[0][0] if spans else num_samples, "SIL"))
    merged = _merge_silences(spans)
    return tuple(Phone(label, start / sample_rate, end / sample_rate)
                 for start, end, label in merged)


def _label_spans(marks: list[tuple[int, str]], num_samples: int) -> list[tuple[int, int, str]]:
    """(start, end, label) sample spans; a mark with several labels is split into equal parts."""
    starts = [min(max(sample, 0), num_samples) for sample, _ in marks] + [num_samples]
    spans: list[tuple[int, int, str]] = []
    for i, (_, mnemonic) in enumerate(marks):
        labels = espeak_to_arpabet(mnemonic)
        following = espeak_to_arpabet(marks[i + 1][1]) if i + 1 < len(marks) else ()
        if len(labels) > 1 and labels[-1] == "R" and following[:1] == ("R",):
            labels = labels[:-1]  # eSpeak already spells out the linking r
        spans.extend(_split(starts[i], max(starts[i + 1], starts[i]), labels))
    return [span for span in _give_room(spans) if span[1] > span[0]]


def _give_room(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Give each zero-length phone the last third of the phone before it.

    eSpeak NG folds a dark l before a pause into the vowel ("pool": the u: carries the l and the
    l event comes at the pause), which would otherwise leave that consonant without any time.
    """
    out: list[tuple[int, int, str]] = []
    for start, end, label in spans:
        if end == start and label != "SIL" and out and out[-1][2] != "SIL" and out[-1][1] == start:
            prev_start, prev_end, prev_label = out[-1]
            cut = prev_end - (prev_end - prev_start) // 3
            out[-1] = (prev_start, cut, prev_label)
            start = cut
        out.append((start, end, label))
    return out


def _split(start: int, end: int, labels: tuple[str, ...]) -> list[tuple[int, int, str]]:
    edges = np.linspace(start, end, len(labels) + 1).round().astype(int)
    return [(int(a), int(b), label) for a, b, label in zip(edges[:-1], edges[1:], labels)]


def _merge_silences(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, label in spans:
        if merged and label == "SIL" and merged[-1][2] == "SIL":
            merged[-1] = (merged[-1][0], end, "SIL")
        else:
            merged.append((start, end, label))
    return merged


# --------------------------------------------------------------------------------------------
# the public call: one fresh worker process per utterance


_VOICES = {"en": "en-us", "other": "en-us", "zh": "cmn"}  # eSpeak NG names other codes as ISO 639


def voice_for(language: str) -> str:
    """The eSpeak NG voice that speaks ``language`` (an ISO 639 code, as ``--language``)."""
    return _VOICES.get(language, language)


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 150) -> Speech:
    """Speak ``text`` with eSpeak NG; deterministic (same arguments -> identical samples).

    Returns the waveform (int16 from eSpeak scaled to float32 in [-1, 1), at eSpeak's rate,
    22050 Hz) and its phones. Raises ``ValueError`` for empty text or a rate outside
    ``MIN_WPM..MAX_WPM``, ``AudioError`` when eSpeak NG cannot be loaded, has no such voice,
    or produces no sound.
    """
    if not text.strip():
        raise ValueError("text to speak is empty")
    if not MIN_WPM <= words_per_minute <= MAX_WPM:
        raise ValueError(
            f"words_per_minute must be in {MIN_WPM}..{MAX_WPM}, got {words_per_minute}"
        )
    request = {"text": text, "voice": voice, "wpm": int(words_per_minute)}
    samples, rate, marks = _run_worker(request)
    waveform = Waveform(samples.astype(np.float32) / 32768.0, rate)
    return Speech(waveform=waveform, phones=phones_from_marks(marks, samples.size, rate))


def _run_worker(request: dict) -> tuple[np.ndarray, int, list[tuple[int, str]]]:
    """Samples (N,) int16, sample rate in Hz and phoneme marks from a fresh worker process."""
    try:
        done = subprocess.run(
            _worker_command(), input=json.dumps(request).encode(), capture_output=True,
            timeout=60 + len(request["text"]) / 10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"speech synthesis could not run: {exc}") from exc
    header, _, pcm = done.stdout.partition(b"\n")
    if done.returncode != 0 or not header:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise AudioError(f"speech synthesis failed: {detail[0]}")
    meta = json.loads(header)
    if "error" in meta:
        raise AudioError(meta["error"])
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
    return samples, int(meta["sample_rate"]), [(int(s), str(m)) for s, m in meta["marks"]]


def _worker_command() -> list[str]:
    """Runs this file as ``__main__``; run_path, unlike ``python FILE``, leaves sys.path alone."""
    code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
    return [sys.executable, "-c", code, str(Path(__file__).resolve())]


def _worker_main() -> None:
    """Serve one request: JSON on stdin -> JSON header line + int16 little-endian PCM on stdout."""
    request = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    try:
        engine = _Engine.get()
        samples, rate, marks = engine.speak(request["text"], request["voice"], request["wpm"])
    except _EngineError as exc:
        out.write(json.dumps({"error": str(exc)}).encode() + b"\n")
        return
    out.write(json.dumps({"sample_rate": rate, "marks": marks}).encode() + b"\n")
    out.write(samples.astype("<i2").tobytes())
    out.flush()


# --------------------------------------------------------------------------------------------
# the eSpeak NG engine (one per process)


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAMETER_RATE = 1


class _EngineError(RuntimeError):
    """eSpeak NG failed; the worker reports the message and the caller raises ``AudioError``."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h); ``audio_position`` in ms, ``sample`` counts samples."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Engine:
    """The process's single eSpeak NG instance; ``speak`` is serialised by a lock."""

    _lock = threading.Lock()
    _instance: _Engine | None = None

    @classmethod
    def get(cls) -> _Engine:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        self._lib = _load_library()
        data_path = _data_path()
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if self.sample_rate <= 0:
            raise _EngineError(f"eSpeak NG failed to initialise with its data at {data_path}")
        self._chunks: list[np.ndarray] = []
        self._marks: list[tuple[int, str]] = []
        self._callback = _SynthCallback(self._on_audio)  # kept referenced while C holds it
        self._lib.espeak_SetSynthCallback(self._callback)

    def speak(
        self, text: str, voice: str, wpm: int
    ) -> tuple[np.ndarray, int, list[tuple[int, str]]]:
        """(N,) int16 samples, the sample rate in Hz and (start sample, mnemonic) phoneme marks."""
        with self._lock:
            self._chunks, self._marks = [], []
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise _EngineError(f"eSpeak NG has no voice named {voice!r} for text-to-speech; "
                                   "give the speech as audio instead, or another language")
            self._lib.espeak_SetParameter(_PARAMETER_RATE, int(wpm), 0)
            encoded = text.encode("utf-8")
            status = self._lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            if status != 0:
                raise _EngineError(f"eSpeak NG could not synthesize the text (error {status}).")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            if samples.size == 0:
                raise _EngineError("eSpeak NG produced no sound for the text.")
            return samples, self.sample_rate, list(self._marks)

    def _on_audio(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:
        """eSpeak's callback: ``count`` int16 samples at ``wav``, then events up to a terminator."""
        if count > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                mnemonic = events[i].id.string.decode("ascii", errors="replace")
                self._marks.append((int(events[i].sample), mnemonic))
            i += 1
        return 0


def _load_library() -> ctypes.CDLL:
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
    except (ImportError, OSError) as exc:
        raise _EngineError(
            f"cannot load the eSpeak NG library ({exc}). Install it with "
            "'pip install espeakng-loader==0.2.4'."
        ) from exc
    _declare(lib)
    return lib


def _data_path() -> str:
    import espeakng_loader

    try:
        return espeakng_loader.get_data_path()
    except RuntimeError as exc:
        raise _EngineError(
            f"the eSpeak NG data folder is missing ({exc}); reinstall espeakng-loader."
        ) from exc


def _declare(lib: ctypes.CDLL) -> None:
    """C signatures of the speak_lib.h functions used here."""
    c = ctypes
    lib.espeak_Initialize.argtypes = [c.c_int, c.c_int, c.c_char_p, c.c_int]
    lib.espeak_Initialize.restype = c.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [c.c_char_p]
    lib.espeak_SetVoiceByName.restype = c.c_int
    lib.espeak_SetParameter.argtypes = [c.c_int, c.c_int, c.c_int]
    lib.espeak_SetParameter.restype = c.c_int
    lib.espeak_Synth.argtypes = [c.c_void_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint, c.c_uint,
                                 c.POINTER(c.c_uint), c.c_void_p]
    lib.espeak_Synth.restype = c.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = c.c_int


if __name__ == "__main__":
    _worker_main()
