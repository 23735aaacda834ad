"""Regenerate the README's Results section: quality on real clips, synthetic lips, speed.

    python benchmarks/results.py              # rewrites README.md between the results markers
    python benchmarks/results.py --dry-run    # prints the section instead

Runs the evaluation (``talkinghead eval`` through the Python API) on ../shared/data/clips,
the synthetic-speech lip scores, and ``benchmarks/speed.py --markdown`` in a
subprocess; takes a few minutes on a laptop CPU. Needs the ``eval`` extra (dlib).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLIPS = ROOT.parent / "shared" / "data" / "clips"
START, END = "<!-- results:start -->", "<!-- results:end -->"
HEADING = "## Results"
COMMAND = "python benchmarks/results.py"


# ---------------------------------------------------------------- the parts

def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: logical cores, CPU model, OS, Python version, 1-minute load average now."""
    return (f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")


def quality_table(clips: Path, work: Path) -> str:
    """Markdown table of the evaluation of the default pipeline on every clip in ``clips``."""
    from talkinghead import Pipeline
    from talkinghead.evaluation import evaluate_clips, format_markdown

    pipeline = Pipeline()
    report = evaluate_clips(clips, lambda image, audio, out: pipeline.run(image, audio, out),
                            work / "eval.json", work / "eval_work", progress=_say)
    return format_markdown(report)


def synthetic_table() -> str:
    """Markdown table of the synthetic-speech lip scores, all three phone sources."""
    from talkinghead.evaluation.synthetic import PHONE_SOURCES, format_synthetic, synthetic_scores

    return format_synthetic(synthetic_scores(sources=PHONE_SOURCES, progress=_say), markdown=True)


def speed_table() -> str:
    """``speed.py --markdown`` output: its summary line, a blank line, its table."""
    command = [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--markdown"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"speed.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    table_start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    return "\n".join(lines[:table_start] + [""] + lines[table_start:]).strip()


def _say(line: str) -> None:
    """Progress to stderr."""
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the section

def section(machine_line: str, quality: str, synthetic: str, speed: str, minutes: float) -> str:
    """The Markdown between the markers; ``machine_line`` from ``machine()`` at the start."""
    return f"""
{time.strftime('%Y-%m-%d')}, {machine_line} at the start.
Default settings (`crop`, 25 fps, seed 0).

**Quality on real clips** (`talkinghead eval ../shared/data/clips`). Each clip's frame 0 is the
portrait and its own sound the speech; *generated* is talkinghead, *real* the clip itself
(the ceiling), *still* the portrait unmoving (the floor). Measured with independent dlib
landmarks; definitions in `../shared/docs/METRICS.md`. sync r: mouth opening vs the real
clip's (lag in frames); aud: vs audio energy, with a shifted-audio null; silence: mouth
opening in pauses / in speech (lower rests better); id: face-descriptor distance to the
portrait; sharp: face sharpness / the portrait's, at the same face scale, median over frames;
cpbd: the whole frames' CPBD (Narvekar & Karam's no-reference sharpness, as papers report it;
higher is sharper; HDTF's real 512² clips read about 0.39), mean of 25 frames;
gaze: spread (std) of the iris's place between the eye corners, in eye widths (a still eye
reads about 0.01, the measurement's noise); brow: spread (std) of the brows' height above the
eye corners, in inter-ocular distances (head pitch and dlib's fit of a moving mouth move it
too: our videos with the brows held still read 0.007 on WDA, 0.038 on retalking).

{quality}

**Lips on synthetic speech** (`talkinghead eval --synthetic`). eSpeak NG sentences with
exact phone timing; the video is rendered from the true phones, from phones recognized in the
audio (the default), or from phones aligned to the text (`--transcript`), and scored against
the true phones: share of /p b m/ with the lips closed, of open vowels with the lips open.

{synthetic}

**Speed** (`python benchmarks/speed.py --markdown`): real-time factor = wall time /
audio duration, files in to mp4 out, in a fresh process; RTF is the median of the runs, best
RTF the fastest (identical runs differ by up to ±25 % on this shared machine); stage columns in
seconds per audio second. To compare two versions of the renderer, use
`python benchmarks/render_frame.py` (one frame on one thread, best of several rounds).
`python benchmarks/cores.py` shows how many cores the machine really gives: this VM's two
vCPUs slow each other by 1.4-1.6×, about 1.3-1.4 cores' worth for render and encode together.

{speed}

Regenerate this section (about {max(1, round(minutes))} min, needs `../shared/data` and the
`eval` extra): `{COMMAND}`
"""


def replace_section(text: str, body: str) -> str:
    """``text`` with the part between the markers replaced by ``body``; heading and markers
    appended at the end if absent."""
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        return head + START + body + END + rest.split(END, 1)[1]
    return text.rstrip("\n") + f"\n\n{HEADING}\n\n{START}{body}{END}\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=CLIPS, help="folder of real talking clips")
    ap.add_argument("--dry-run", action="store_true", help="print the section, leave README.md")
    args = ap.parse_args()
    if not args.clips.is_dir():
        raise SystemExit(f"{args.clips} is absent: the results need the shared clips.")
    start, load = time.perf_counter(), machine()
    with tempfile.TemporaryDirectory(prefix="talkinghead_results_") as tmp:
        quality = quality_table(args.clips, Path(tmp))
    synthetic = synthetic_table()
    speed = speed_table()
    body = section(load, quality, synthetic, speed, (time.perf_counter() - start) / 60.0)
    if args.dry_run:
        print(body)
        return
    write_atomic(README, replace_section(README.read_text(encoding="utf-8"), body))
    _say(f"rewrote the results in {README} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
