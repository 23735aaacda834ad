"""Regenerate docs/gallery.jpg: rendered frames that show what talkinghead does.

Mouth closed and open, lips rounded, a smile, a blink, heads turned ±20° and nodding with the
eyes held on the viewer, full mode on a half-body photo, and 1:1 details of a 1024² crop,
rendered from controlled coefficients on public-domain pictures only: the Grace Hopper portrait
that matplotlib ships and, when scikit-image is installed, its astronaut (Eileen Collins, NASA).

    python benchmarks/gallery.py [--out docs/gallery.jpg]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.face import regions as R
from talkinghead.media import load_image
from talkinghead.render.renderer import Renderer
from talkinghead.samples import demo_portrait_path
from talkinghead.types import Portrait, Waveform

TILE = 300
SHOTS = (  # label, expression channels, pose (pitch, yaw, roll in degrees), blink
    ("photo (mouth closed)", {}, (0, 0, 0), 0.0),
    ("mouth open", {"jaw_open": 0.8}, (0, 0, 0), 0.0),
    ("lips rounded", {"jaw_open": 0.2, "lip_pucker": 1.0}, (0, 0, 0), 0.0),
    ("smile", {"smile": 1.0, "jaw_open": 0.25}, (0, 0, 0), 0.0),
    ("blink", {}, (0, 0, 0), 1.0),
    ("yaw +20°, talking, eyes on you", {"jaw_open": 0.3, "gaze_x": -0.7}, (0, 20, 0), 0.0),
    ("yaw -20°, nod 15°, eyes on you", {"gaze_x": 0.7}, (15, -20, 0), 0.0),
    ("roll 8°, brows up", {"brow_raise": 1.0}, (0, 0, 8), 0.0),
)
FULL_SHOTS = (("yaw +20°, mouth open", {"jaw_open": 0.6}, (0, 20, 0), 0.0),
              ("yaw -15°, blink", {}, (5, -15, 0), 1.0))
DETAIL_SHOTS = (("mouth open", {"jaw_open": 0.6}, (0, 0, 0), 0.0),
                ("half blink", {}, (0, 0, 0), 0.5))


def render_shots(mode: str, shots=SHOTS, portrait: Portrait | None = None,
                 size: int | None = None) -> tuple[list[tuple[str, np.ndarray]], Renderer]:
    """(label, frame) for every shot, in the given crop mode, and the renderer."""
    pipeline = Pipeline(Config(face=FaceConfig(preprocess=mode, size=size)))
    silence = Waveform(np.zeros(16000, np.float32), 16000)
    prepared = pipeline.prepare(portrait or load_image(demo_portrait_path()), silence)
    renderer = Renderer(prepared.framing, prepared.fit)
    channels = prepared.fit.channels
    frames = []
    for label, expr, angles, blink in shots:
        weights = np.zeros(len(channels), np.float32)
        for name, value in expr.items():
            weights[channels.index(name)] = value
        pose = np.zeros(6, np.float32)
        pose[:3] = np.radians(angles)
        frames.append((label, renderer.render(weights, pose, blink)))
    return frames, renderer


def half_body() -> Portrait:
    """The astronaut photo (public domain) when scikit-image is installed, else Hopper."""
    try:
        from skimage.data import astronaut
    except ImportError:
        return load_image(demo_portrait_path())
    return Portrait(np.ascontiguousarray(astronaut()))


def detail(frame: np.ndarray, renderer: Renderer, vertices: np.ndarray) -> np.ndarray:
    """A 1:1 TILE × TILE cut of ``frame`` centred on the mean of the mesh ``vertices``."""
    cx, cy = np.round(renderer.fit.mesh[vertices, :2].mean(axis=0)).astype(int)
    h, w = frame.shape[:2]
    x0, y0 = int(np.clip(cx - TILE // 2, 0, w - TILE)), int(np.clip(cy - TILE // 2, 0, h - TILE))
    return frame[y0:y0 + TILE, x0:x0 + TILE]


def tile(label: str, frame: np.ndarray) -> np.ndarray:
    """A TILE-high picture with its label."""
    h, w = frame.shape[:2]
    out = cv2.resize(frame, (round(w * TILE / h), TILE), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (0, TILE - 24), (out.shape[1], TILE), (0, 0, 0), -1)
    cv2.putText(out, label, (6, TILE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "gallery.jpg"))
    args = ap.parse_args()
    crops = [tile(label, f) for label, f in render_shots("crop")[0]]
    full = [tile(f"full: {label}", f) for label, f in render_shots("full", FULL_SHOTS, half_body())[0]]
    shots, renderer = render_shots("crop", DETAIL_SHOTS, size=1024)
    regions = (np.concatenate([R.UPPER_OUTER, R.LOWER_OUTER]), np.concatenate([R.RIGHT_UPPER_LID]))
    details = [tile(f"1024² crop, 1:1: {label}", detail(f, renderer, v))
               for (label, f), v in zip(shots, regions)]
    rows = [np.concatenate(crops[:4], 1), np.concatenate(crops[4:], 1)]
    width = rows[0].shape[1]
    last = np.concatenate(full + details, 1)
    last = np.pad(last, ((0, 0), (0, max(0, width - last.shape[1])), (0, 0)))[:, :width]
    picture = np.concatenate(rows + [last], 0)
    cv2.imwrite(args.out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})")


if __name__ == "__main__":
    main()
