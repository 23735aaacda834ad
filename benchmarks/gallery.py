"""Regenerate docs/gallery.jpg: rendered frames that show what talkinghead does.

Mouth closed and open, lips rounded, a smile, a blink, turned heads and full mode, rendered
from controlled coefficients on the public-domain portrait that matplotlib ships.

    python benchmarks/gallery.py [--out docs/gallery.jpg]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.media import load_image
from talkinghead.render.renderer import Renderer
from talkinghead.samples import demo_portrait_path
from talkinghead.types import Waveform

TILE = 300
SHOTS = (  # label, expression channels, pose (pitch, yaw, roll in degrees), blink
    ("photo (mouth closed)", {}, (0, 0, 0), 0.0),
    ("mouth open", {"jaw_open": 0.8}, (0, 0, 0), 0.0),
    ("lips rounded", {"jaw_open": 0.2, "lip_pucker": 1.0}, (0, 0, 0), 0.0),
    ("smile", {"smile": 1.0, "jaw_open": 0.25}, (0, 0, 0), 0.0),
    ("blink", {}, (0, 0, 0), 1.0),
    ("yaw +15°", {"jaw_open": 0.3}, (0, 15, 0), 0.0),
    ("yaw -15°, nod", {}, (8, -15, 0), 0.0),
    ("roll 8°, brows up", {"brow_raise": 1.0}, (0, 0, 8), 0.0),
)


def render_shots(mode: str) -> list[tuple[str, np.ndarray]]:
    """(label, frame) for every shot, in the given crop mode."""
    pipeline = Pipeline(Config(face=FaceConfig(preprocess=mode)))
    silence = Waveform(np.zeros(16000, np.float32), 16000)
    prepared = pipeline.prepare(load_image(demo_portrait_path()), silence)
    renderer = Renderer(prepared.framing, prepared.fit)
    channels = prepared.fit.channels
    frames = []
    for label, expr, angles, blink in SHOTS:
        weights = np.zeros(len(channels), np.float32)
        for name, value in expr.items():
            weights[channels.index(name)] = value
        pose = np.zeros(6, np.float32)
        pose[:3] = np.radians(angles)
        frames.append((label, renderer.render(weights, pose, blink)))
    return frames


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
    crops = [tile(label, f) for label, f in render_shots("crop")]
    full = [tile(f"full mode: {label}", f) for label, f in render_shots("full")[4:6]]
    rows = [np.concatenate(crops[:4], 1), np.concatenate(crops[4:], 1)]
    width = rows[0].shape[1]
    last = np.concatenate(full, 1)
    last = np.pad(last, ((0, 0), (0, max(0, width - last.shape[1])), (0, 0)))[:, :width]
    picture = np.concatenate(rows + [last], 0)
    cv2.imwrite(args.out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})")


if __name__ == "__main__":
    main()
