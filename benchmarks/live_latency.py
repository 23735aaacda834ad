"""Live sessions (WebSocket /v1/live): how late the frames come back, and whether they keep up.

A server runs in this process (uvicorn in a thread, like ``talkinghead serve``); each client
sends the demo portrait, then speech paced in real time (a 20 ms message as soon as those 20 ms
have passed, as a microphone would) and records when each JPEG frame arrives. A frame shows time
t_k = (k + 0.5) / fps of the speech; its latency is its arrival minus the moment the message
holding that instant was sent (the look-ahead, 0.1 s of speech beyond t_k, is part of it). Sessions run at once, as several users would.

    python benchmarks/live_latency.py                  # 256² and 512², 1 and 2 sessions
    python benchmarks/live_latency.py --seconds 20 --sizes 512 --sessions 1 2 3
"""
from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from websockets.sync.client import connect

from talkinghead.audio.tts import synthesize
from talkinghead.media import load_audio
from talkinghead.samples import demo_portrait_path
from talkinghead.server.app import Settings, create_app

CHUNK_S = 0.02
TEXT = ("Good morning, and welcome to the course. Today we look at how a talking head is made "
        "from a single photo and a recording of speech.")


def serve(max_live: int) -> tuple[str, uvicorn.Server]:
    """A server on a free loopback port, in a thread → (ws:// base URL, server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp(prefix="live-bench-")), max_live=max_live))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"ws://127.0.0.1:{port}", server


def speech_pcm(seconds: float) -> bytes:
    """``seconds`` of eSpeak speech (repeated) as 16 kHz mono 16-bit PCM."""
    with tempfile.TemporaryDirectory() as folder:
        from talkinghead.media import write_wav

        wav = write_wav(Path(folder) / "speech.wav", synthesize(TEXT).waveform)
        samples = load_audio(wav).samples
    samples = np.resize(samples, int(seconds * 16000))
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def session(url: str, size: int, pcm: bytes, out: dict) -> None:
    """One client: real-time speech in, arrival time of every frame out (``out``)."""
    arrivals: list[float] = []
    with connect(f"{url}/v1/live?size={size}", max_size=None) as ws:
        ws.send(demo_portrait_path().read_bytes())
        ready = json.loads(ws.recv())
        reader = threading.Thread(target=_read, args=(ws, arrivals, out), daemon=True)
        chunk = int(CHUNK_S * 16000) * 2
        start = time.perf_counter()
        reader.start()
        for i, offset in enumerate(range(0, len(pcm), chunk)):
            time.sleep(max(0.0, start + (i + 1) * CHUNK_S - time.perf_counter()))  # once recorded
            ws.send(pcm[offset:offset + chunk])
        ws.send(json.dumps({"type": "end"}))
        reader.join()
    out.update(start=start, arrivals=np.array(arrivals) - start, fps=ready["fps"])


def _read(ws, arrivals: list[float], out: dict) -> None:
    while True:
        message = ws.recv()
        if isinstance(message, bytes):
            arrivals.append(time.perf_counter())
        else:
            out["done"] = json.loads(message)
            return


def latencies(result: dict, seconds: float) -> np.ndarray:
    """Seconds from sending each frame's instant of speech to receiving the frame (frames
    within the speech; the last ones wait for the end message)."""
    k = np.arange(len(result["arrivals"]))
    instant = (k + 0.5) / result["fps"]
    sent = (np.floor(instant / CHUNK_S) + 1) * CHUNK_S  # when the chunk holding it was sent
    keep = instant < seconds - 0.2
    return result["arrivals"][keep] - sent[keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    pcm = speech_pcm(args.seconds)
    url, server = serve(max(args.sessions))
    print(f"{'size':>5s} {'sessions':>8s} {'frames':>7s} {'median s':>8s} {'p95 s':>6s} {'max s':>6s}")
    for size in args.sizes:
        for count in args.sessions:
            results = [{} for _ in range(count)]
            threads = [threading.Thread(target=session, args=(url, size, pcm, r)) for r in results]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lat = np.concatenate([latencies(r, args.seconds) for r in results])
            frames = min(r["done"]["frames"] for r in results)
            print(f"{size:5d} {count:8d} {frames:7d} {np.median(lat):8.3f} "
                  f"{np.percentile(lat, 95):6.3f} {lat.max():6.3f}", flush=True)
    server.should_exit = True


if __name__ == "__main__":
    main()
