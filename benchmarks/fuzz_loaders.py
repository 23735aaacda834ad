"""Mutation fuzzing of the photo and sound loaders (``media.load_image``, ``media.load_audio``).

Small valid files (PNG, JPEG, GIF, WebP, TIFF, BMP; WAV, FLAC, MP3-in-mp4/AAC, Ogg) are mutated
(bit flips, overwritten bytes, truncation, inserted and deleted runs, header fields set to
extremes) by a seeded generator. Every mutant must either load into a valid value (the right
shape and dtype, finite samples in [-1, 1]) or raise ``ImageError`` / ``AudioError``, within a
few seconds, without a Python warning (the command line would print it). Anything else is a
finding: its file is kept under ``--keep`` for a regression test.

    python benchmarks/fuzz_loaders.py --iterations 2000 --seed 0 --keep fuzz-findings
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from talkinghead.errors import AudioError, ImageError
from talkinghead.media import load_audio, load_image

SLOW_S = 5.0
"""A single load taking longer than this is a finding (a hang in waiting)."""


def image_seeds() -> dict[str, bytes]:
    """Small valid images, one per format."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    im = Image.fromarray(pixels)
    seeds = {}
    for fmt, options, mode in [("PNG", {}, "RGB"), ("PNG", {}, "P"), ("PNG", {}, "RGBA"),
                               ("JPEG", {"quality": 80}, "RGB"), ("JPEG", {}, "CMYK"),
                               ("GIF", {}, "P"), ("WEBP", {}, "RGB"), ("TIFF", {}, "RGB"),
                               ("BMP", {}, "RGB")]:
        buf = io.BytesIO()
        im.convert(mode).save(buf, format=fmt, **options)
        seeds[f"{fmt.lower()}_{mode.lower()}"] = buf.getvalue()
    return seeds


def audio_seeds() -> dict[str, bytes]:
    """Small valid recordings, one per container and codec."""
    import av
    import soundfile as sf

    t = np.arange(8000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    seeds = {}
    for name, fmt, subtype in [("wav16", "WAV", "PCM_16"), ("wavf", "WAV", "FLOAT"),
                               ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS")]:
        buf = io.BytesIO()
        sf.write(buf, tone, 16000, format=fmt, subtype=subtype)
        seeds[name] = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.m4a"
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream("aac", rate=16000, layout="mono")
            frame = av.AudioFrame.from_ndarray(tone[None, :], format="flt", layout="mono")
            frame.sample_rate = 16000
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000, frame_size=1024)
            pts = 0
            for f in resampler.resample(frame) + resampler.resample(None):
                f.pts = pts
                pts += f.samples
                out.mux(stream.encode(f))
            out.mux(stream.encode(None))
        seeds["m4a"] = path.read_bytes()
    return seeds


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to four random mutations of ``data``; the header (first 64 bytes) is hit often."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        if not buf:
            break
        kind = int(rng.integers(0, 7))
        head = int(rng.random() < 0.5)
        pos = int(rng.integers(0, min(len(buf), 64) if head else len(buf)))
        if kind == 0:  # flip a bit
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # overwrite a run with random bytes
            n = int(rng.integers(1, 16))
            buf[pos:pos + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 2:  # truncate
            del buf[pos:]
        elif kind == 3:  # insert random bytes
            buf[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif kind == 4:  # delete a run
            del buf[pos:pos + int(rng.integers(1, 64))]
        elif kind == 5:  # an extreme 32-bit value (sizes, counts, dimensions)
            value = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000, 0xFFFF])
            buf[pos:pos + 4] = int(value).to_bytes(4, rng.choice(["big", "little"]))
        else:  # duplicate a run
            n = int(rng.integers(1, 256))
            buf[pos:pos] = buf[pos:pos + n]
    return bytes(buf)


def check_image(path: Path) -> None:
    """Raise AssertionError unless ``load_image`` gives a valid portrait or an ImageError."""
    try:
        pixels = load_image(path).pixels
    except ImageError:
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3, pixels.shape
    assert pixels.shape[0] >= 1 and pixels.shape[1] >= 1


def check_audio(path: Path) -> None:
    """Raise AssertionError unless ``load_audio`` gives a valid waveform or an AudioError."""
    try:
        wave = load_audio(path)
    except AudioError:
        return
    s = wave.samples
    assert s.dtype == np.float32 and s.ndim == 1 and s.size > 0, (s.dtype, s.shape)
    assert np.isfinite(s).all() and np.abs(s).max() <= 1.0, "samples not finite or out of range"


def fuzz(kind: str, iterations: int, seed: int, keep: Path | None) -> Counter:
    """Run ``iterations`` mutants of the ``kind`` ('image' or 'audio') seeds; findings by kind."""
    seeds = image_seeds() if kind == "image" else audio_seeds()
    check = check_image if kind == "image" else check_audio
    rng = np.random.default_rng(seed)
    names = sorted(seeds)
    findings: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(iterations):
            name = names[int(rng.integers(0, len(names)))]
            path = Path(tmp) / f"{kind}_{i}_{name}"
            path.write_bytes(mutate(seeds[name], rng))
            problem = _run_one(check, path)
            if problem:
                findings[problem] += 1
                if findings[problem] == 1:
                    print(f"finding [{kind} #{i} from {name}]: {problem}", file=sys.stderr)
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, keep / path.name)
            path.unlink(missing_ok=True)
    return findings


def _run_one(check, path: Path) -> str | None:
    """None if the loader behaved; else a one-line description of what went wrong."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check(path)
        if caught:  # printed to the user's terminal by the command line: noise that looks broken
            w = caught[0]
            return f"warning leaked: {w.category.__name__} from {Path(w.filename).name}"
    except AssertionError as exc:
        return f"invalid result: {exc}"
    except Exception as exc:  # noqa: BLE001 - a fuzzer reports whatever escapes
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
    if time.perf_counter() - started > SLOW_S:
        return f"slow: over {SLOW_S:g} s"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1000, help="mutants per loader")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="copy failing inputs here")
    args = ap.parse_args()
    total = 0
    for kind in ("image", "audio"):
        started = time.perf_counter()
        findings = fuzz(kind, args.iterations, args.seed, args.keep)
        elapsed = time.perf_counter() - started
        total += sum(findings.values())
        print(f"{kind}: {args.iterations} mutants in {elapsed:.1f} s, "
              f"{sum(findings.values())} findings")
        for problem, count in findings.most_common():
            print(f"  {count:5d}  {problem}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
