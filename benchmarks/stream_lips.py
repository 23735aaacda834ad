"""Lips on the live path vs the file path, on eSpeak speech whose phone timing is known.

For each sentence of ``evaluation.synthetic.SENTENCES`` and two more, the demo portrait's mesh is
posed with the expression of every frame — from ``Stream`` (causal, loudness and labial
valleys, ≤ 0.12 s look-ahead) and from ``Pipeline.prepare`` with recognized phones (the file
path) — and the inner-lip gap is scored against the true phones with
``metrics.bilabial_scores``: the share of /p b m/ with closed lips, of open vowels with open
lips, and (for the false closures) of /t d k g n/ with closed lips. No video is encoded and no
landmark detector runs: the gap is the mesh's own, so this measures the motion, not the pixels.

    python benchmarks/stream_lips.py
"""
from __future__ import annotations

import numpy as np

from talkinghead import Pipeline
from talkinghead.audio.tts import synthesize
from talkinghead.evaluation import metrics as M
from talkinghead.evaluation.synthetic import SENTENCES
from talkinghead.face import regions as R
from talkinghead.media import load_image
from talkinghead.render.renderer import Renderer
from talkinghead.samples import demo_portrait_path
from talkinghead.stream import Stream
from talkinghead.types import Phone

EXTRA = ("Peter picked a peck of pickled peppers.", "Maybe the baby will bump the bumper.")
OTHER_STOPS = ("T", "D", "K", "G", "N")
FPS = 25.0


def lip_gap(renderer: Renderer, expression: np.ndarray) -> float:
    """Inner-lip gap (pixels) of the mesh posed with ``expression`` (no head pose, no blink)."""
    mesh = renderer.posed_mesh(expression, np.zeros(6, np.float32), 0.0)
    return float(np.mean(mesh[R.LOWER_INNER[3:8], 1] - mesh[R.UPPER_INNER[3:8], 1]))


def live_gaps(portrait, face, speech) -> np.ndarray:
    """(T,) lip gaps of the frames ``Stream`` emits for ``speech`` fed in 20 ms chunks."""
    stream = Stream(portrait, sample_rate=speech.waveform.sample_rate, face=face)
    chunk = speech.waveform.sample_rate // 50
    x = speech.waveform.samples
    frames = [f for i in range(0, len(x), chunk) for f in stream.feed(x[i:i + chunk])]
    frames += stream.finish()
    return np.array([lip_gap(stream.renderer, f.expression) for f in frames])


def file_gaps(pipeline: Pipeline, portrait, speech) -> np.ndarray:
    """(T,) lip gaps of the file path's motion, phones recognized from the audio."""
    prepared = pipeline.prepare(portrait, speech.waveform)
    renderer = Renderer(prepared.framing, prepared.fit)
    return np.array([lip_gap(renderer, e) for e in prepared.motion.expression])


def scores(gaps: np.ndarray, phones: tuple[Phone, ...]) -> tuple[float, float, float]:
    """(p/b/m closed, open vowels open, t/d/k/g/n closed) shares."""
    closed, opened = M.bilabial_scores(gaps, phones, FPS)
    others = tuple(Phone("P" if p.label in OTHER_STOPS else "SIL", p.start, p.end) for p in phones)
    false_closed, _ = M.bilabial_scores(gaps, others, FPS)
    return closed, opened, false_closed


def main() -> None:
    portrait = load_image(demo_portrait_path())
    face = Stream(portrait).face
    pipeline = Pipeline()
    rows = {"live": [], "file": []}
    print(f"{'sentence':42s} {'path':5s} {'p/b/m':>6s} {'vowels':>6s} {'t/d/k/g/n':>9s}")
    for sentence in SENTENCES + EXTRA:
        speech = synthesize(sentence)
        for path, gaps in (("live", live_gaps(portrait, face, speech)),
                           ("file", file_gaps(pipeline, portrait, speech))):
            row = scores(gaps, speech.phones)
            rows[path].append(row)
            print(f"{sentence[:42]:42s} {path:5s} {row[0]:6.2f} {row[1]:6.2f} {row[2]:9.2f}")
    for path, values in rows.items():
        mean = np.nanmean(np.array(values), axis=0)
        print(f"{'mean':42s} {path:5s} {mean[0]:6.2f} {mean[1]:6.2f} {mean[2]:9.2f}")


if __name__ == "__main__":
    main()
