"""Do our closed eyes read as closed? An independent face model's view of a blink.

For each portrait, renders the face at rest (no expression, no head pose) with the lids open,
half closed and fully closed (``blink`` 0, 0.5, 1), finds dlib's 68 landmarks on each frame
and prints the eye aspect ratio (EAR, mean of both eyes; ``evaluation.metrics``) and the
ratio closed / open. On real faces a closed eye brings dlib's EAR down to about a third or
half of its open value (the blinks that ``metrics.detect_blinks`` finds in the three real clips of
../shared/data/clips: 0.36–0.53); a ratio near 1 means dlib still sees an open eye, and the
eval's blink detector misses that video's blinks.

    python benchmarks/closed_eyes.py                      # every portrait in ../shared/data/portraits
    python benchmarks/closed_eyes.py photo.jpg other.png  # these photos
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from talkinghead import Config, Pipeline
from talkinghead.errors import UserError
from talkinghead.evaluation import metrics as M
from talkinghead.evaluation.landmarks import Landmarker
from talkinghead.media import load_image
from talkinghead.pipeline import Timings
from talkinghead.render.renderer import Renderer

PORTRAITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits"
CLOSURES = (0.0, 0.5, 1.0)


def eye_aspect_ratios(photo: Path, landmarker: Landmarker) -> list[float] | None:
    """dlib's mean EAR of both eyes at each of CLOSURES; None where no face is found."""
    try:
        framing, fit, _ = Pipeline(Config()).face(load_image(photo), Timings())
    except UserError:
        return None
    renderer = Renderer(framing, fit)
    rest, pose = np.zeros(len(fit.channels), np.float32), np.zeros(6, np.float32)
    frames = [renderer.render(rest, pose, closure) for closure in CLOSURES]
    points = landmarker.track(frames).points
    return [float(v) for v in M.eye_aspect_ratio(points).mean(axis=1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="*", type=Path)
    args = ap.parse_args()
    photos = args.photos or sorted(PORTRAITS.glob("*.*"))
    if not photos:
        sys.exit(f"no photos given and none in {PORTRAITS}")
    landmarker = Landmarker()
    ratios = []
    print(f"{'photo':24s} " + " ".join(f"EAR@{c:.1f}" for c in CLOSURES) + "  closed/open")
    for photo in photos:
        ears = eye_aspect_ratios(photo, landmarker)
        if ears is None or not np.all(np.isfinite(ears)):
            print(f"{photo.name:24s} (no face for dlib or for us)")
            continue
        ratios.append(ears[-1] / ears[0])
        print(f"{photo.name:24s} " + " ".join(f"{e:7.3f}" for e in ears) + f"  {ratios[-1]:11.2f}")
    if ratios:
        print(f"median closed/open {np.median(ratios):.2f} over {len(ratios)} photos; "
              f"share under 0.6: {np.mean(np.array(ratios) < 0.6):.2f}")


if __name__ == "__main__":
    main()
