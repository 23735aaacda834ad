"""Glasses: which photos have a frame found over the eyes, how long the search takes, and how
far a blink moves the frame with and without holding it still.

For each photo: whether ``face.glasses.find_rims`` finds a bar over both eyes, the search time
(median of 5, ms), and, where found, the largest per-pixel change (0-255) that a full blink
makes on the bar (3 px above the middle half of each rim's lower edge, 512² crop) when the
renderer holds the rims and when it ignores them, next to the median change just under the
upper lids (the lid must close either way).

    python benchmarks/glasses.py                      # the demo portrait and ../shared/data/portraits
    python benchmarks/glasses.py photo.jpg other.png  # these photos
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from talkinghead.errors import UserError
from talkinghead.face.crop import plan_framing
from talkinghead.face.glasses import find_rims
from talkinghead.face.landmarks import find_face
from talkinghead.face.model import fit_framed
from talkinghead.media import load_image
from talkinghead.render.renderer import EYES, Renderer
from talkinghead.samples import demo_portrait_path

PORTRAITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits"


def search_ms(pixels: np.ndarray, mesh: np.ndarray, rounds: int = 5) -> float:
    """Median time of ``find_rims`` on one photo, milliseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        find_rims(pixels, mesh)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def blink_change(framing, mesh: np.ndarray, rims) -> tuple[float, float]:
    """Largest change a full blink makes on the bars of ``rims`` (working pixels) and the
    median change just under the upper lids, rendering ``framing``."""
    fit = fit_framed(framing, mesh)
    renderer = Renderer(framing, fit)
    rest, pose = fit.source_expression.astype(np.float32), np.zeros(6, np.float32)
    opened, closed = (renderer.render(rest, pose, b).astype(int) for b in (0.0, 1.0))
    change = np.abs(opened - closed).max(axis=-1)
    bar, lid = [], []
    for edge, (upper, _) in zip(rims, EYES):
        middle = np.round(edge[len(edge) // 4: 3 * len(edge) // 4]).astype(int)
        bar.append(change[middle[:, 1] - 3, middle[:, 0]].max())
        points = np.round(fit.mesh[upper[3:6], :2]).astype(int)
        lid.append(np.median(change[points[:, 1] + 1, points[:, 0]]))
    return float(max(bar)), float(np.median(lid))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="*", type=Path)
    args = ap.parse_args()
    photos = args.photos or [demo_portrait_path(), *sorted(PORTRAITS.glob("*.*"))]
    print(f"{'photo':22s} {'glasses':>7s} {'search ms':>9s} {'bar held':>8s} {'bar free':>8s} {'lid':>5s}")
    for photo in photos:
        try:
            pixels = load_image(photo).pixels
            mesh, _ = find_face(pixels)
        except UserError as e:
            print(f"{photo.name:22s} ({e})")
            continue
        ms = search_ms(pixels, mesh)
        framing = plan_framing(pixels, mesh, "crop", 512, matte=False)
        if framing.rims is None:
            print(f"{photo.name:22s} {'no':>7s} {ms:9.1f}")
            continue
        held, lid = blink_change(framing, mesh, framing.rims)
        free, _ = blink_change(replace(framing, rims=None), mesh, framing.rims)
        print(f"{photo.name:22s} {'yes':>7s} {ms:9.1f} {held:8.0f} {free:8.0f} {lid:5.0f}")


if __name__ == "__main__":
    main()
