"""Per-frame render time of the face-vid2vid renderer at full size: ours vs the original.

    python benchmarks/sadtalker_speed.py [--sadtalker /path/to/SadTalker] [--python PY]
        [--frames 2] [--size 256] [--threads N]

Both sides load the same seeded random weights in the official layout (the real release's key
→ shape table, tests/fixtures/sadtalker_layouts.json.gz) and render the same driving keypoints.
Ours encodes the source once (keypoint detector + appearance volume) and then runs only the
motion network and generator per frame; the original's generator re-encodes the source every
frame, as its make_animation does. Each side runs in its own process (peak RSS measured there).
Without --sadtalker only our side runs. Prints a table and the largest pixel difference.
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from talkinghead.neural.synthetic import random_state  # noqa: E402

SEED = 21


def renderer_layout() -> dict[str, list[int]]:
    """Official key → shape of kp_extractor.* and generator.* in the real release files."""
    with gzip.open(ROOT / "tests" / "fixtures" / "sadtalker_layouts.json.gz", "rt") as f:
        release = json.load(f)["official_release"]["safetensors"]
    return {k: v for k, v in release.items() if k.startswith(("kp_extractor.", "generator."))}


def inputs(size: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source image (1, 3, S, S) in [0, 1] and per-frame keypoint offsets (frames, 1, 15, 3)."""
    gen = torch.Generator().manual_seed(SEED)
    image = torch.rand(1, 3, size, size, generator=gen)
    offsets = 0.05 * torch.randn(frames, 1, 15, 3, generator=gen)
    return image, offsets


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(size: int, frames: int) -> dict:
    """Our Renderer: encode once, then render each frame; seconds per frame, frames."""
    from talkinghead.neural.checkpoints import SAFETENSORS_TABLE, map_state
    from talkinghead.neural.facevid2vid import Renderer

    class Part(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.renderer = Renderer()

    part = Part()
    state = map_state(random_state(renderer_layout(), SEED), part, SAFETENSORS_TABLE, "random")
    part.load_state_dict(state)
    net = part.renderer.eval()
    image, offsets = inputs(size, frames)
    with torch.no_grad():
        t = time.perf_counter()
        canonical, volume = net.encode(image)
        encode = time.perf_counter() - t
        times, out = [], []
        for i in range(frames):
            t = time.perf_counter()
            out.append(net(volume, canonical, canonical + offsets[i]).numpy())
            times.append(time.perf_counter() - t)
    return {"encode": encode, "times": times, "frames": np.concatenate(out), "rss": peak_mb()}


def run_original(root: Path, size: int, frames: int) -> dict:
    """The original KPDetector + OcclusionAwareSPADEGenerator, per frame as make_animation."""
    import yaml

    sys.path.insert(0, str(root))
    from src.facerender.modules.generator import OcclusionAwareSPADEGenerator
    from src.facerender.modules.keypoint_detector import KPDetector

    cfg = yaml.safe_load(open(root / "src" / "config" / "facerender.yaml"))["model_params"]
    kp_net = KPDetector(**cfg["kp_detector_params"], **cfg["common_params"])
    gen_net = OcclusionAwareSPADEGenerator(**cfg["generator_params"], **cfg["common_params"])
    state = random_state(renderer_layout(), SEED)
    for prefix, net in (("kp_extractor.", kp_net), ("generator.", gen_net)):
        net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        net.eval()
    image, offsets = inputs(size, frames)
    with torch.no_grad():
        t = time.perf_counter()
        canonical = kp_net(image)["value"]
        encode = time.perf_counter() - t
        times, out = [], []
        for i in range(frames):
            t = time.perf_counter()
            pred = gen_net(image, kp_source={"value": canonical},
                           kp_driving={"value": canonical + offsets[i]})["prediction"]
            times.append(time.perf_counter() - t)
            out.append(pred.numpy())
    return {"encode": encode, "times": times, "frames": np.concatenate(out), "rss": peak_mb()}


def in_subprocess(python: str, side: str, args: argparse.Namespace) -> dict:
    """Run one side in a fresh interpreter; its results come back through an npz."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.npz"
        cmd = [python, __file__, "--worker", side, "--out", str(out), "--frames", str(args.frames),
               "--size", str(args.size), "--threads", str(args.threads)]
        if args.sadtalker:
            cmd += ["--sadtalker", str(args.sadtalker)]
        subprocess.run(cmd, check=True)
        data = np.load(out)
        return {k: data[k] for k in data.files}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    result = (run_ours(args.size, args.frames) if args.worker == "ours"
              else run_original(args.sadtalker, args.size, args.frames))
    np.savez(args.out, **result)


def table(results: dict[str, dict]) -> str:
    """Markdown table: per-frame seconds (median), one-time encode, peak RSS, frames held."""
    rows = ["| renderer | per frame s (median) | encode once s | peak RSS MB | frames held per minute |",
            "|---|---:|---:|---:|---|"]
    held = {"ours": "0 (streamed)", "original": "1500 (make_animation keeps all, ~1.2 GB at 256 fp32)"}
    for name, r in results.items():
        rows.append(f"| {name} | {np.median(r['times']):.2f} | {float(r['encode']):.2f} | "
                    f"{float(r['rss']):.0f} | {held[name]} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sadtalker", type=Path, default=None, help="root of a SadTalker checkout")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the original")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--worker", choices=("ours", "original"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    results = {"ours": in_subprocess(sys.executable, "ours", args)}
    if args.sadtalker:
        results["original"] = in_subprocess(args.python, "original", args)
    print(f"{args.size}x{args.size}, {args.frames} frames, {args.threads} threads, "
          f"torch {torch.__version__}\n")
    print(table(results))
    if "original" in results:
        ours, theirs = results["ours"], results["original"]
        speedup = np.median(theirs["times"]) / np.median(ours["times"])
        diff = np.abs(ours["frames"] - theirs["frames"]).max()
        print(f"\nspeed-up per frame: {speedup:.2f}x; max |ours − original| over all pixels: {diff:.2e}")


if __name__ == "__main__":
    main()
