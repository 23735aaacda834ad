"""Per-frame render time of the face-vid2vid renderer at full size: ours vs the original.

    python benchmarks/sadtalker_speed.py [--sadtalker /path/to/SadTalker] [--python PY]
        [--frames 2] [--warmup 1] [--rounds 1] [--size 256] [--threads N] [--precisions fp32,bf16]

Both sides load the same seeded random weights in the official layout (the real release's key
→ shape table, tests/fixtures/sadtalker_layouts.json.gz) and render the same driving keypoints.
Ours encodes the source once (keypoint detector + appearance volume) and then runs only the
motion network and generator per frame; the original's generator re-encodes the source every
frame, as its make_animation does. Ours runs once per precision (fp32: faithful; bf16: the
generator under bfloat16 autocast, skipped where the CPU has no native bf16). Each side runs in
its own process (peak RSS measured there). Each side first renders --warmup untimed frames
(one-time work: oneDNN kernel selection, and on our side the weights the fast path derives on
first use: BN folded, Winograd-transformed; their time is the "first frame" column). With
--rounds R the sides take turns R times (the
machine's load drifts) and the per-frame medians pool all rounds; on a shared machine the
fastest frame is the steadier figure (other load only adds time). Without --sadtalker only our
side runs. Prints a table: seconds per frame, speed-up over the original, peak RSS and the pixel
difference (uint8 output, mean / max grey levels) against the original, or against ours fp32.
With --exact the kept frames are also rendered in float64 (slow) and each side's distance to
them printed: how far each float32 side rounds from exact arithmetic.
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


KEEP = 2  # frames kept for the pixel comparison (the rest are dropped: memory stays flat)


def our_renderer():
    """Our Renderer with the seeded random weights, eval mode."""
    from talkinghead.neural.checkpoints import SAFETENSORS_TABLE, map_state
    from talkinghead.neural.facevid2vid import Renderer

    class Part(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.renderer = Renderer()

    part = Part()
    state = map_state(random_state(renderer_layout(), SEED), part, SAFETENSORS_TABLE, "random")
    part.load_state_dict(state)
    return part.renderer.eval()


def run_ours(size: int, frames: int, precision: str = "fp32", warmup: int = 1) -> dict:
    """Our Renderer: encode once, then render each frame; seconds per frame, frames."""
    net = our_renderer()
    net.precision = precision
    image, offsets = inputs(size, frames)
    with torch.inference_mode():
        t = time.perf_counter()
        canonical, volume = net.encode(image)
        encode = time.perf_counter() - t
        first = _warm_up(lambda: net(volume, canonical, canonical + offsets[0]), warmup)
        times, out = [], []
        for i in range(frames):
            t = time.perf_counter()
            frame = net(volume, canonical, canonical + offsets[i]).numpy()
            times.append(time.perf_counter() - t)
            if i < KEEP:
                out.append(frame)
    return {"encode": encode, "first": first, "times": times, "frames": np.concatenate(out), "rss": peak_mb()}


def run_exact(size: int, frames: int) -> np.ndarray:
    """The kept frames in float64 arithmetic (our plain modules, which mirror the original's
    operations): the reference both float32 sides round away from."""
    net = our_renderer().double()
    image, offsets = inputs(size, frames)
    with torch.no_grad():
        canonical, volume = net.encode(image.double())
        return np.concatenate([net(volume, canonical, canonical + offsets[i].double()).numpy()
                               for i in range(min(frames, KEEP))])


def _warm_up(render, count: int) -> float:
    """Render ``count`` untimed frames; seconds of the first (nan when none)."""
    first = float("nan")
    for i in range(count):
        t = time.perf_counter()
        render()
        if i == 0:
            first = time.perf_counter() - t
    return first


def run_original(root: Path, size: int, frames: int, warmup: int = 1) -> dict:
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
        first = _warm_up(lambda: gen_net(image, kp_source={"value": canonical},
                                         kp_driving={"value": canonical + offsets[0]}), warmup)
        times, out = [], []
        for i in range(frames):
            t = time.perf_counter()
            pred = gen_net(image, kp_source={"value": canonical},
                           kp_driving={"value": canonical + offsets[i]})["prediction"]
            times.append(time.perf_counter() - t)
            if i < KEEP:
                out.append(pred.numpy())
    return {"encode": encode, "first": first, "times": times, "frames": np.concatenate(out), "rss": peak_mb()}


def in_subprocess(python: str, side: str, args: argparse.Namespace) -> dict:
    """Run one side ("original" or "ours-<precision>") in a fresh interpreter; its results come
    back through an npz."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.npz"
        cmd = [python, __file__, "--worker", side, "--out", str(out), "--frames", str(args.frames),
               "--warmup", str(args.warmup), "--size", str(args.size), "--threads", str(args.threads)]
        if args.sadtalker:
            cmd += ["--sadtalker", str(args.sadtalker)]
        subprocess.run(cmd, check=True)
        data = np.load(out)
        return {k: data[k] for k in data.files}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    result = (run_original(args.sadtalker, args.size, args.frames, args.warmup) if args.worker == "original"
              else run_ours(args.size, args.frames, args.worker.split("-", 1)[1], args.warmup))
    np.savez(args.out, **result)


def uint8(frames: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) floats in [0, 1] → uint8 as the backend writes them."""
    return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)


def pixel_difference(a: np.ndarray, b: np.ndarray) -> str:
    """Mean / max absolute difference in grey levels of the uint8 frames."""
    d = np.abs(uint8(a).astype(np.int16) - uint8(b).astype(np.int16))
    return f"{d.mean():.2f} / {d.max()}"


def table(results: dict[str, dict]) -> str:
    """Markdown table: per-frame seconds (median), speed-up, one-time encode and first frame,
    peak RSS, pixels."""
    rows = ["| renderer | per frame s (median) | fastest frame s | speed-up vs original (median, fastest) | encode once s "
            "| first frame s | peak RSS MB | pixels vs reference (mean / max grey) | frames held per minute |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    base = results.get("original")
    for name, r in results.items():
        per_frame = np.median(r["times"])
        fastest = np.min(r["times"])
        speedup = (f"{np.median(base['times']) / per_frame:.2f}x, {np.min(base['times']) / fastest:.2f}x"
                   if base is not None else "–")
        if name == "original":
            pixels, held = "reference", "1500 (make_animation keeps all, ~1.2 GB at 256 fp32)"
        else:
            ref = "original" if base is not None else "ours-fp32"
            pixels = ("reference" if name == ref else
                      f"{pixel_difference(r['frames'], results[ref]['frames'])} vs {ref}")
            held = "0 (streamed)"
        rows.append(f"| {name} | {per_frame:.2f} | {fastest:.2f} | {speedup} | {float(r['encode']):.2f} | "
                    f"{float(r['first']):.2f} | {float(r['rss']):.0f} | {pixels} | {held} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sadtalker", type=Path, default=None, help="root of a SadTalker checkout")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the original")
    parser.add_argument("--frames", type=int, default=2, help="timed frames per side per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames rendered first, per side and round")
    parser.add_argument("--rounds", type=int, default=1, help="times the sides take turns")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precisions", default="fp32,bf16", help="ours: comma-separated fp32,bf16")
    parser.add_argument("--exact", action="store_true",
                        help="also render the kept frames in float64 and report each side's distance to them")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from talkinghead.neural.facevid2vid import bf16_supported

    sides = [f"ours-{p}" for p in args.precisions.split(",") if p != "bf16" or bf16_supported()]
    if args.sadtalker:
        sides.append("original")
    results: dict[str, dict] = {}
    for _ in range(args.rounds):
        for side in sides:
            r = in_subprocess(args.python if side == "original" else sys.executable, side, args)
            if side not in results:
                results[side] = r
            else:
                kept = results[side]
                kept["times"] = np.concatenate([kept["times"], r["times"]])
                kept["rss"] = max(float(kept["rss"]), float(r["rss"]))
                kept["encode"] = min(float(kept["encode"]), float(r["encode"]))
                kept["first"] = min(float(kept["first"]), float(r["first"]))
    print(f"{args.size}x{args.size}, {args.frames} frames (after {args.warmup} untimed) x {args.rounds} rounds per side, "
          f"{args.threads} threads, torch {torch.__version__}\n")
    print(table(results))
    if "original" in results and "ours-fp32" in results:
        diff = np.abs(results["ours-fp32"]["frames"] - results["original"]["frames"]).max()
        print(f"\nmax |ours fp32 − original| over all pixels (float): {diff:.2e}")
    if args.exact:
        torch.set_num_threads(args.threads)
        exact = run_exact(args.size, args.frames)
        for name, r in results.items():
            d = np.abs(r["frames"] - exact)
            print(f"{name}: |x − float64 reference| max {d.max():.2e}, mean {d.mean():.2e}")


if __name__ == "__main__":
    main()
