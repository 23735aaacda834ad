"""What one rendered frame costs, on one thread: the backward map (grid work), the resampling,
and the rest (eyes, mouth, the frame copy).

Whole-pipeline timings (``speed.py``) move by ±25 % between identical runs on a shared machine;
this measures the renderer alone, single-threaded, as the best of several rounds over the same
frames, which is steady enough to compare two versions of the renderer.

    python benchmarks/render_frame.py              # 256², 512², 1024² crops
    python benchmarks/render_frame.py --frames 50 --rounds 3 photo.png
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.media import load_audio, load_image
from talkinghead.render.renderer import Renderer
from talkinghead.render.warp import warp_into
from talkinghead.samples import demo_portrait_path
from talkinghead.types import MotionTrack, Portrait, Waveform

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZES = (256, 512, 1024)


def inputs(photo: Path | None) -> tuple[Portrait, Waveform, str]:
    """A portrait and speech: shared data when present, else the demo portrait and a
    synthesized sentence; and a line naming them."""
    if photo is None:
        shared = SHARED / "portraits/art_4.png"
        photo = shared if shared.is_file() else demo_portrait_path()
    recordings = sorted(SHARED.glob("audio/RD_Radio*.wav")) if SHARED.is_dir() else []
    if recordings:
        return load_image(photo), load_audio(recordings[0]), f"{photo.name}, {recordings[0].name}"
    from talkinghead.audio.tts import demo_sentence, synthesize

    return load_image(photo), synthesize(demo_sentence()).waveform, f"{photo.name}, eSpeak NG"


def best_ms(work, frames: int, rounds: int) -> float:
    """Milliseconds per frame of ``work(i)`` over ``frames`` frames, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(frames):
            work(i)
        best = min(best, (time.perf_counter() - start) / frames * 1000)
    return best


def measure(renderer: Renderer, motion: MotionTrack, frames: int, rounds: int) -> dict:
    """ms per frame: the whole render, its backward map (mesh, masks, grid), its resampling."""
    r, m = renderer, motion

    def backward(i: int):
        return r.frame_map(r.posed_mesh(m.expression[i], m.pose[i], float(m.blink[i])), m.pose[i])[0]

    maps = [backward(i) for i in range(frames)]
    window = np.ascontiguousarray(r.window)
    render = best_ms(lambda i: r.render(m.expression[i], m.pose[i], float(m.blink[i])), frames, rounds)
    grid = best_ms(backward, frames, rounds)
    warp = best_ms(lambda i: warp_into(window.copy(), r.source, maps[i]), frames, rounds)
    moving = np.mean([(b.box[2] - b.box[0]) * (b.box[3] - b.box[1]) for b in maps]) / 1e6
    return {"render": render, "map": grid, "resample": warp, "rest": render - grid - warp,
            "moving Mpx": moving}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", nargs="?", type=Path)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    portrait, speech, names = inputs(args.photo)
    print(f"{names}; ms per frame on one thread, best of {args.rounds} rounds of {args.frames} "
          "frames")
    print(f"{'crop':>6} {'render':>8} {'map':>8} {'resample':>9} {'rest':>8} {'moving Mpx':>11}")
    for size in SIZES:
        pipeline = Pipeline(Config(face=FaceConfig(preprocess="crop", size=size)))
        prepared = pipeline.prepare(portrait, speech)
        renderer = Renderer(prepared.framing, prepared.fit)
        row = measure(renderer, prepared.motion, min(args.frames, prepared.motion.num_frames),
                      args.rounds)
        print(f"{size:>5}² {row['render']:8.2f} {row['map']:8.2f} {row['resample']:9.2f} "
              f"{row['rest']:8.2f} {row['moving Mpx']:11.3f}")


if __name__ == "__main__":
    main()
