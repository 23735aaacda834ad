"""Peak memory for long speech: 1, 10 and 60 minutes through the audio side of the pipeline.

Each length runs in a fresh process (so peaks do not mix): decode the file (``load_audio``),
hear it (phone recognition + prosody, ``Pipeline.hear``), plan the motion (``make_motion``),
and stream a 64×64 video of that length with the speech muxed in (``VideoWriter``; the frames
are constant, so this measures the writer and the audio track, not the renderer). Prints the
peak resident memory (VmHWM) after each stage and the seconds each took.

    python benchmarks/long_audio.py            # 1, 10, 60 minutes
    python benchmarks/long_audio.py 1 5        # chosen lengths in minutes
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r'''
import json, sys, time
import numpy as np

def peak_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) // 1024

from talkinghead.media import VideoWriter, load_audio
from talkinghead.motion.track import make_motion
from talkinghead.config import MotionConfig
from talkinghead.pipeline import Pipeline
from talkinghead.face.model import CHANNELS

report, t = {"start_mb": peak_mb()}, time.perf_counter()
speech = load_audio(sys.argv[1])
report["decode"] = (time.perf_counter() - t, peak_mb()); t = time.perf_counter()
features = Pipeline().hear(speech)
report["hear"] = (time.perf_counter() - t, peak_mb()); t = time.perf_counter()
motion = make_motion(features, CHANNELS, 25.0, MotionConfig(), 0)
report["motion"] = (time.perf_counter() - t, peak_mb()); t = time.perf_counter()
frame = np.full((64, 64, 3), 128, np.uint8)
with VideoWriter(sys.argv[2], 64, 64, 25.0, speech) as writer:
    for _ in range(motion.num_frames):
        writer.write(frame)
report["write"] = (time.perf_counter() - t, peak_mb())
print(json.dumps(report))
'''


def speech_file(folder: Path, minutes: float) -> Path:
    """A 16 kHz 16-bit wav of synthetic sentences repeated for ``minutes``, written in blocks."""
    import soundfile as sf

    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.features import iter_16k

    sentences = ["Bob met a papa bear by the mall.", "The quick brown fox jumps over the dog.",
                 "Please call me when you arrive at the station."]
    parts = []
    for text in sentences:
        w = synthesize(text).waveform
        parts.append(np.concatenate(list(iter_16k(w))))
        parts.append(np.zeros(8000, np.float32))
    loop = np.concatenate(parts)
    total = int(minutes * 60 * 16000)
    path = folder / f"speech_{minutes:g}min.wav"
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as f:
        for start in range(0, total, len(loop)):
            f.write(loop[: min(len(loop), total - start)])
    return path


def measure(minutes: float, folder: Path) -> dict:
    audio = speech_file(folder, minutes)
    out = folder / "out.mp4"
    done = subprocess.run([sys.executable, "-c", CHILD, str(audio), str(out)],
                          capture_output=True, text=True)
    audio.unlink()
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    lengths = [float(a) for a in sys.argv[1:]] or [1.0, 10.0, 60.0]
    print("| minutes | decode s | hear s | motion s | write s | peak RSS MB after decode / hear "
          "/ motion / write |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in lengths:
            started = time.perf_counter()
            r = measure(minutes, Path(tmp))
            stages = ("decode", "hear", "motion", "write")
            secs = " | ".join(f"{r[s][0]:.1f}" for s in stages)
            peaks = " / ".join(str(r[s][1]) for s in stages)
            print(f"| {minutes:g} | {secs} | {peaks} (start {r['start_mb']}) |", flush=True)
            print(f"  ({time.perf_counter() - started:.0f} s in all)", file=sys.stderr)


if __name__ == "__main__":
    main()
