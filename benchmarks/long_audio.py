"""Peak memory for long speech through the path users take: ``Pipeline.run`` on files.

Each length runs in a fresh process (so peaks do not mix) and makes a real video: decode the
photo and the recording (``load_image``, ``load_audio``: long recordings go to a temporary file),
then ``Pipeline.animate``: the speech is fed through the animation loop (``stream.Stream``), whose
phrase planner recognizes pieces and plans their motion in a background thread while frames
render and encode, the speech muxed in step. The face crop is 64 px (``--size``) so that rendering is cheap and the audio side shows.
Prints the peak resident memory (VmHWM) after decoding and after the video, the resident memory
left at the end, and the seconds of each stage (``Result.timings``; render, phones and motion
run in parallel with encoding, so they overlap).

    python benchmarks/long_audio.py             # 1, 10, 60 minutes
    python benchmarks/long_audio.py 1 60        # chosen lengths in minutes
    python benchmarks/long_audio.py --size 128 1
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r'''
import json, sys, time

def memory_mb(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key))
    return int(line.split()[1]) // 1024

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.media import load_audio, load_image, probe_video
from talkinghead.samples import demo_portrait_path

image, audio, out, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pipeline = Pipeline(Config(face=FaceConfig(size=size)))
report = {"start_mb": memory_mb("VmHWM")}
t = time.perf_counter()
portrait, speech = load_image(image), load_audio(audio)
report["decode"] = (time.perf_counter() - t, memory_mb("VmHWM"))
report["on_disk"] = getattr(speech, "reader", None) is not None
t = time.perf_counter()
result = pipeline.animate(portrait, speech, out)
report["video"] = (time.perf_counter() - t, memory_mb("VmHWM"))
report["end_rss_mb"] = memory_mb("VmRSS")
report["timings"] = {k: round(v, 1) for k, v in vars(result.timings).items()}
info = probe_video(out)
report["frames"] = (result.num_frames, info.num_frames, round(info.audio_duration_s, 2))
print(json.dumps(report))
'''


def speech_file(folder: Path, minutes: float) -> Path:
    """A 16 kHz 16-bit wav of synthetic sentences repeated for ``minutes``, written in blocks."""
    import soundfile as sf

    from talkinghead.audio.features import iter_16k
    from talkinghead.audio.tts import synthesize

    sentences = ["Bob met a papa bear by the mall.", "The quick brown fox jumps over the dog.",
                 "Please call me when you arrive at the station."]
    parts = []
    for text in sentences:
        parts.append(np.concatenate(list(iter_16k(synthesize(text).waveform))))
        parts.append(np.zeros(8000, np.float32))
    loop = np.concatenate(parts)
    total = int(minutes * 60 * 16000)
    path = folder / f"speech_{minutes:g}min.wav"
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as f:
        for start in range(0, total, len(loop)):
            f.write(loop[: min(len(loop), total - start)])
    return path


def measure(minutes: float, folder: Path, size: int) -> dict:
    """The child's report for one recording of ``minutes``."""
    from talkinghead.samples import demo_portrait_path

    audio = speech_file(folder, minutes)
    out = folder / "out.mp4"
    done = subprocess.run([sys.executable, "-c", CHILD, str(demo_portrait_path()), str(audio),
                           str(out), str(size)], capture_output=True, text=True, check=False)
    audio.unlink()
    out.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(minutes: float, r: dict, seconds: float) -> str:
    """One markdown table row of a child's report."""
    t = r["timings"]
    stages = " / ".join(f"{t[k]:.0f}" for k in ("decode", "face", "phones", "motion", "render",
                                                 "encode"))
    frames, decoded, audio_s = r["frames"]
    return (f"| {minutes:g} | {r['start_mb']} | {r['decode'][1]} | {r['video'][1]} | "
            f"{r['end_rss_mb']} | {'file' if r['on_disk'] else 'memory'} | {stages} | "
            f"{r['video'][0]:.0f} | {seconds:.0f} | {decoded}/{frames}, {audio_s:g} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", nargs="*", type=float, default=[1.0, 10.0, 60.0])
    parser.add_argument("--size", type=int, default=64, help="face crop side in pixels")
    args = parser.parse_args()
    print("| minutes | peak MB at start | after decode | after video | RSS MB at end | samples "
          "| s decode / face / phones / motion / render / encode | s video | s in all "
          "| frames in file / planned, audio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            started = time.perf_counter()
            r = measure(minutes, Path(tmp), args.size)
            print(row(minutes, r, time.perf_counter() - started), flush=True)


if __name__ == "__main__":
    main()
