"""Lip closure and opening on synthetic speech whose phone timing is known exactly.

eSpeak NG (``audio.tts.synthesize``) speaks a few fixed sentences rich in /p b m/ and open
vowels. The product pipeline animates the demo portrait with each one, once per phone source:

- ``true``: given eSpeak's own phones (the timing is known),
- ``recognized``: phones recognized from the audio (what ``talkinghead generate`` does),
- ``aligned``: phones force-aligned to the sentence's text (``--transcript``).

The independent dlib ``Landmarker`` measures the mouth opening m_t of the written mp4, and
``metrics.bilabial_scores`` scores it against the TRUE eSpeak phones whatever the source:
the share of /p b m/ during which the lips close, and of open vowels during which they open.

eSpeak's stops are short (/p/, /b/: 30–50 ms), so a phone often holds a single frame instant
k / fps, and a closure one frame early counts as missed. The score is strict by design; see
``missed`` in each row for which phones it was.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import Config
from ..types import Phone
from . import metrics as M
from ._media import read_video
from .landmarks import Landmarker

SENTENCES = (
    "Bob met a papa bear by the mall.",
    "My mom made a big map of Bombay.",
    "Pam bought a bag of apples, and Bob ate plump apples.",
)
PHONE_SOURCES = ("true", "recognized", "aligned")
DEFAULT_SOURCES = ("true", "recognized")


@dataclass(frozen=True)
class SyntheticRow:
    """Scores of one sentence rendered with one phone source.

    ``seconds``: audio length; ``bilabials`` / ``open_vowels``: how many such true phones;
    ``bilabial_closed`` / ``vowel_open``: shares in [0, 1] (NaN without such phones);
    ``missed``: the true phones scored wrong, as "LABEL@start seconds"; ``face_found``: share
    of video frames with dlib landmarks; timings in seconds.
    """

    sentence: str
    source: str
    seconds: float
    bilabials: int
    open_vowels: int
    bilabial_closed: float
    vowel_open: float
    missed: tuple[str, ...]
    face_found: float
    generate_seconds: float
    measure_seconds: float


# ---------------------------------------------------------------- measuring one video

def mouth_series(video_path: Path, landmarker: Landmarker, fps: float) -> np.ndarray:
    """(T,) m_t of a video on the timeline k / ``fps`` seconds (NaN where no face).

    m_t: inner-lip gap in inter-ocular distances (``metrics.mouth_opening``); frames are
    resampled from their container times, so m_t[k] belongs to the instant k / fps.
    """
    video = read_video(Path(video_path))
    track = landmarker.track(video.frames)
    end = float(video.times[-1]) + 1.0 / video.fps
    grid = np.arange(max(1, math.floor(end * fps + 1e-6))) / fps
    return M.mouth_opening(M.resample(track.points, video.times, grid))


def missed_phones(mouth: np.ndarray, phones: tuple[Phone, ...], fps: float) -> tuple[str, ...]:
    """True phones scored wrong: /p b m/ without closure, open vowels without opening.

    Each phone is scored alone by ``bilabial_scores`` (the thresholds depend only on the whole
    video's range, so this matches the pooled score). Returned as "LABEL@start" (seconds).
    """
    missed = []
    for phone in phones:
        closed, opened = M.bilabial_scores(mouth, (phone,), fps)
        score = closed if phone.label in M.BILABIALS else opened
        if score == 0.0:
            missed.append(f"{phone.label}@{phone.start:.2f}")
    return tuple(missed)


def score_row(sentence: str, source: str, mouth: np.ndarray, phones: tuple[Phone, ...],
              fps: float, seconds: float, timing: tuple[float, float]) -> SyntheticRow:
    """The row of one rendered sentence: ``mouth`` (T,) m_t at ``fps`` against the true ``phones``."""
    closed, opened = M.bilabial_scores(mouth, phones, fps)
    return SyntheticRow(
        sentence=sentence, source=source, seconds=seconds,
        bilabials=sum(p.label in M.BILABIALS for p in phones),
        open_vowels=sum(p.label in M.OPEN_VOWELS for p in phones),
        bilabial_closed=closed, vowel_open=opened, missed=missed_phones(mouth, phones, fps),
        face_found=float(np.isfinite(mouth).mean()) if len(mouth) else 0.0,
        generate_seconds=timing[0], measure_seconds=timing[1])


# ---------------------------------------------------------------- rendering

def _source_config(config: Config, source: str, sentence: str) -> Config:
    """The config for one phone source: a transcript only when ``aligned``."""
    if source not in PHONE_SOURCES:
        raise ValueError(f"phone source must be one of {PHONE_SOURCES}, got {source!r}")
    return replace(config, transcript=sentence if source == "aligned" else None)


def render_sentence(config: Config, portrait, speech, sentence: str, source: str,
                    out_path: Path) -> float:
    """Animate ``portrait`` with ``speech`` (a ``tts.Speech``) into ``out_path``; seconds taken."""
    from ..pipeline import Pipeline

    phones = speech.phones if source == "true" else None
    start = time.perf_counter()
    Pipeline(_source_config(config, source, sentence)).animate(
        portrait, speech.waveform, out_path, phones=phones)
    return time.perf_counter() - start


# ---------------------------------------------------------------- all sentences

def synthetic_rows(config: Config | None = None, sentences: tuple[str, ...] = SENTENCES,
                   sources: tuple[str, ...] = DEFAULT_SOURCES, work_dir: Path | None = None,
                   landmarker: Landmarker | None = None,
                   progress: Callable[[str], None] | None = None) -> list[SyntheticRow]:
    """One row per (sentence, phone source); videos go to ``work_dir`` (a temporary folder if None)."""
    from ..audio.tts import synthesize
    from ..media import load_image
    from ..samples import demo_portrait_path

    config = config or Config()
    landmarker = landmarker or Landmarker()
    portrait = load_image(demo_portrait_path())
    rows = []
    with tempfile.TemporaryDirectory(prefix="talkinghead_synthetic_") as tmp:
        folder = Path(work_dir) if work_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for index, sentence in enumerate(sentences):
            speech = synthesize(sentence)
            for source in sources:
                out_path = folder / f"sentence{index}_{source}.mp4"
                generate_seconds = render_sentence(config, portrait, speech, sentence, source, out_path)
                start = time.perf_counter()
                mouth = mouth_series(out_path, landmarker, config.video.fps)
                rows.append(score_row(sentence, source, mouth, speech.phones, config.video.fps,
                                      speech.waveform.duration,
                                      (generate_seconds, time.perf_counter() - start)))
                if progress is not None:
                    progress(f"synthetic {index} {source}: {generate_seconds:.1f} s + "
                             f"{rows[-1].measure_seconds:.1f} s")
    return rows


def pooled(rows: list[SyntheticRow], source: str) -> dict:
    """Scores of one phone source over all sentences: shares weighted by phone counts.

    Keys: ``bilabial_closed``, ``vowel_open`` (shares in [0, 1], NaN if no phones),
    ``bilabials``, ``open_vowels`` (counts), ``sentences``.
    """
    group = [r for r in rows if r.source == source]
    return {"bilabial_closed": _weighted([(r.bilabial_closed, r.bilabials) for r in group]),
            "vowel_open": _weighted([(r.vowel_open, r.open_vowels) for r in group]),
            "bilabials": sum(r.bilabials for r in group),
            "open_vowels": sum(r.open_vowels for r in group), "sentences": len(group)}


def _weighted(pairs: list[tuple[float, int]]) -> float:
    """Count-weighted mean of shares, ignoring NaN shares; NaN when nothing is left."""
    kept = [(share, count) for share, count in pairs if math.isfinite(share) and count > 0]
    total = sum(count for _, count in kept)
    return sum(share * count for share, count in kept) / total if total else math.nan


def synthetic_scores(config: Config | None = None, sentences: tuple[str, ...] = SENTENCES,
                     sources: tuple[str, ...] = DEFAULT_SOURCES, work_dir: Path | None = None,
                     landmarker: Landmarker | None = None,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Bilabial closure and vowel opening of the pipeline on synthetic speech.

    Returns ``{"fps", "rows": [per sentence and source], "pooled": {source: pooled(...)}}``
    (see ``SyntheticRow`` and ``pooled``; shares in [0, 1], times in seconds).
    """
    config = config or Config()
    rows = synthetic_rows(config, sentences, sources, work_dir, landmarker, progress)
    return {"fps": config.video.fps, "rows": [asdict(r) for r in rows],
            "pooled": {source: pooled(rows, source) for source in sources}}


# ---------------------------------------------------------------- output

def _share(value: float) -> str:
    """A share as "0.92", or "-" for NaN."""
    return f"{value:.2f}" if value is not None and math.isfinite(value) else "-"


def format_synthetic(scores: dict, markdown: bool = False) -> str:
    """Table of ``synthetic_scores``: one line per phone source (pooled), then per sentence."""
    head = ["phones", "sentence", "p/b/m", "closed", "open vowels", "opened"]
    lines = [[source, "all", str(p["bilabials"]), _share(p["bilabial_closed"]),
              str(p["open_vowels"]), _share(p["vowel_open"])] for source, p in scores["pooled"].items()]
    lines += [[r["source"], r["sentence"], str(r["bilabials"]), _share(r["bilabial_closed"]),
               str(r["open_vowels"]), _share(r["vowel_open"])] for r in scores["rows"]]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---|---|---:|---:|---:|---:|"]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head)] + [fmt.format(*line) for line in lines])


def main_synthetic(config: Config | None = None, out_json: Path | None = None,
                   quiet: bool = False, work_dir: Path | None = None) -> dict:
    """CLI entry: score, write ``out_json`` if given, print the table (progress to stderr)."""
    from .runner import _json_ready, write_json

    progress = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    scores = synthetic_scores(config, work_dir=work_dir, progress=progress)
    if out_json is not None:
        write_json(Path(out_json), _json_ready(scores))
    print(format_synthetic(scores))
    return scores
