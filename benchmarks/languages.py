"""Lip sync across languages: does the mouth follow the speech's energy as well on Chinese,
Japanese, German, Russian and French as on English?

For every file in ../shared/data/audio, runs the motion stage (``Pipeline.prepare`` on the
demo portrait), poses the face mesh for each frame (expression only: no head pose, no blink)
and measures the inner-lip gap m_t (in inter-ocular distances) against the audio energy e_t
(dB per frame window, ``evaluation.metrics.audio_energy``). Per file: r(m, e) at lag 0, the
best r and its lag over ±8 frames, the shifted-audio null, and the silence ratio (median
opening in pauses ≥ 0.25 s / in speech). Then medians for English and for the rest.

    python benchmarks/languages.py             # table on stdout
    python benchmarks/languages.py --json out.json
    python benchmarks/languages.py --as-english   # every file told to be English (no --language)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from talkinghead import Pipeline
from talkinghead.evaluation import metrics as M
from talkinghead.face import regions as R
from talkinghead.media import load_audio, load_image
from talkinghead.config import Config, MotionConfig
from talkinghead.render.renderer import Renderer
from talkinghead.samples import demo_portrait_path

AUDIO_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"
LANGUAGES = {"bus_chinese": "zh", "chinese_news": "zh", "chinese_poem1": "zh",
             "chinese_poem2": "zh", "deyu": "de", "eluosi": "ru", "fayu": "fr", "japanese": "ja"}
"""File stem → ISO 639 language; every other file is English (PROVENANCE.md)."""
COLUMNS = ("r0", "best_r", "lag", "null_r", "silence")


def language(path: Path) -> str:
    """The ISO 639 language of a sample file, from its name."""
    return LANGUAGES.get(path.stem, "en")


def mouth_gaps(pipeline: Pipeline, portrait_path: Path,
               audio_path: Path) -> tuple[np.ndarray, float]:
    """(T,) inner-lip gap per frame in IOD of the posed mesh (no head pose), and the fps."""
    prepared = pipeline.prepare(load_image(portrait_path), load_audio(audio_path))
    renderer = Renderer(prepared.framing, prepared.fit)
    m = prepared.motion
    gaps = np.empty(m.num_frames)
    for i in range(m.num_frames):
        mesh = renderer.posed_mesh(m.expression[i], np.zeros(6, np.float32), 0.0)
        gap = mesh[R.LOWER_INNER[3:8], 1] - mesh[R.UPPER_INNER[3:8], 1]
        gaps[i] = gap.mean() / prepared.fit.iod
    return gaps, m.fps


def frame_energy(audio_path: Path, num_frames: int, fps: float) -> np.ndarray:
    """(T,) e_t: log RMS level in dB over each frame's window [k / fps, (k + 1) / fps)."""
    speech = load_audio(audio_path)
    times = np.arange(num_frames) / fps
    return M.audio_energy(speech.samples, speech.sample_rate, times, 1.0 / fps)


def measure(pipeline: Pipeline, portrait_path: Path, audio_path: Path) -> dict[str, float]:
    """Sync of the mouth with the audio energy for one file (see the module docstring)."""
    gaps, fps = mouth_gaps(pipeline, portrait_path, audio_path)
    energy = frame_energy(audio_path, len(gaps), fps)
    sync = M.sync_with_audio(gaps, energy)
    return {"r0": sync.r0, "best_r": sync.best_r, "lag": float(sync.best_lag),
            "null_r": sync.null_best_r, "silence": M.silence_rest_ratio(gaps, energy, fps)}


def format_row(name: str, lang: str, row: dict[str, float]) -> str:
    """One table line."""
    return (f"{name:16s} {lang:9s} {row['r0']:6.2f} {row['best_r']:6.2f} {row['lag']:4.0f} "
            f"{row['null_r']:6.2f} {row['silence']:7.2f}")


def medians(rows: dict[str, dict[str, float]], names: list[str]) -> dict[str, float]:
    """Median of each column over the files ``names`` (NaN ignored)."""
    return {c: float(np.nanmedian([rows[n][c] for n in names])) for c in COLUMNS}


def main(argv: list[str] | None = None) -> int:
    """Measure every file, print the table and the English / non-English medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio-dir", type=Path, default=AUDIO_DIR)
    parser.add_argument("--portrait", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--as-english", action="store_true",
                        help="run every file as English (what a user who omits --language gets)")
    args = parser.parse_args(argv)
    portrait = args.portrait or demo_portrait_path()
    files = sorted(p for p in args.audio_dir.iterdir() if p.suffix in (".wav", ".mp3", ".flac"))
    print(f"{'file':16s} {'language':9s} {'r0':>6s} {'best':>6s} {'lag':>4s} {'null':>6s} "
          f"{'silence':>7s}")
    rows: dict[str, dict[str, float]] = {}
    for path in files:
        code = "en" if args.as_english else language(path)
        pipeline = Pipeline(Config(motion=MotionConfig(language=code)))
        rows[path.stem] = measure(pipeline, portrait, path)
        print(format_row(path.stem, language(path), rows[path.stem]), flush=True)
    english = [p.stem for p in files if language(p) == "en"]
    other = [p.stem for p in files if language(p) != "en"]
    for label, names in (("median English", english), ("median other", other)):
        if names:
            print(format_row(label, f"n={len(names)}", medians(rows, names)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
