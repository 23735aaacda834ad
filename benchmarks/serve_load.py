"""Load on the HTTP service: N concurrent submissions of short speech, all must come back whole.

Starts ``talkinghead serve``'s app with uvicorn on a free loopback port in this process, submits
``--jobs`` jobs at once from as many client threads, polls each to the end, checks every mp4
(frames, audio track, size) and prints throughput, latency percentiles and peak memory (the server
process plus its worker processes, sampled from /proc). Only 127.0.0.1 is ever contacted; every
loop is bounded by ``--timeout``.

    python benchmarks/serve_load.py                      # 20 jobs, 2 workers, 1.5 s speech, 128 px
    python benchmarks/serve_load.py --jobs 20 --workers 1 --size 256
    python benchmarks/serve_load.py --queue redis://127.0.0.1:6379/0   # RQ mode: --workers
                                                         # 'talkinghead worker' processes
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

SENTENCE = "Bob met a papa bear."


def main() -> None:
    args = _args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wav = _speech_wav(work / "speech.wav")
        stop_workers = _start_rq_workers(args.queue, args.workers) if args.queue else None
        url, stop = _start_server(work / "data", args.workers, args.queue)
        sampler = _MemorySampler(os.getpid())
        sampler.start()
        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(lambda i: _one_job(url, wav, args, work, i), range(args.jobs)))
            wall = time.perf_counter() - t0
        finally:
            sampler.stop()
            stop()
            if stop_workers is not None:
                stop_workers()
    _report(results, wall, sampler.peak_mb, args)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    p.add_argument("--queue", default=None, metavar="redis://HOST:PORT/DB",
                   help="queue mode: a running Redis; --workers RQ workers are started on it")
    return p.parse_args()


def _speech_wav(path: Path) -> Path:
    from talkinghead.audio.tts import synthesize
    from talkinghead.media import write_wav

    return write_wav(path, synthesize(SENTENCE).waveform)


def _start_rq_workers(queue_url: str, count: int):
    """``count`` 'talkinghead worker' processes, ready → a stop function (bounded waits)."""
    import signal
    import subprocess
    import sys

    from redis import Redis
    from rq import Worker

    command = [sys.executable, "-m", "talkinghead", "worker", "--queue", queue_url, "--quiet"]
    procs = [subprocess.Popen(command + ["--name", f"bench-{os.getpid()}-{i}"]) for i in range(count)]
    conn, deadline = Redis.from_url(queue_url), time.monotonic() + 120
    while len(Worker.all(connection=conn)) < count and time.monotonic() < deadline:
        time.sleep(0.2)

    def stop() -> None:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)

    return stop


def _start_server(data: Path, workers: int, queue_url: str | None = None):
    """uvicorn on a free loopback port in a thread → (base url, stop function)."""
    import uvicorn

    from talkinghead.server.app import Settings, create_app
    from talkinghead.server.limits import Limits

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(data_dir=data, workers=workers, limits=Limits(max_queued=64),
                              queue_url=queue_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return f"http://127.0.0.1:{port}", stop


def _one_job(url: str, wav: Path, args: argparse.Namespace, work: Path, index: int) -> dict:
    """Submit, poll, download and check one job → its timings and verdict."""
    from talkinghead.media import probe_video

    deadline = time.monotonic() + args.timeout
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/videos", files={"image": ("p.jpg", _portrait_bytes()),
                                             "audio": ("s.wav", wav.read_bytes())},
                        data={"size": str(args.size), "seed": str(index)})
        if r.status_code != 202:
            return {"ok": False, "why": f"submit {r.status_code}: {r.text[:200]}"}
        job_id = r.json()["id"]
        job = _poll(client, job_id, deadline)
        latency = time.perf_counter() - t0
        if job.get("status") != "done":
            return {"ok": False, "why": f"{job.get('status')}: {job.get('error')}", "latency": latency}
        out = work / f"out{index}.mp4"
        out.write_bytes(client.get(job["video_url"]).content)
    info = probe_video(out)
    whole = info.num_frames == job["frames_total"] and info.has_audio and info.width == args.size
    return {"ok": whole, "why": "" if whole else f"bad mp4 {info}", "latency": latency,
            "wait": job["started_at"] - job["created_at"]}


def _poll(client: httpx.Client, job_id: str, deadline: float) -> dict:
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/videos/{job_id}").json()
        if job.get("status") in ("done", "failed"):
            break
        time.sleep(0.25)
    return job


_PORTRAIT: list[bytes] = []


def _portrait_bytes() -> bytes:
    from talkinghead.samples import demo_portrait_path

    if not _PORTRAIT:
        _PORTRAIT.append(demo_portrait_path().read_bytes())
    return _PORTRAIT[0]


class _MemorySampler:
    """Peak summed RSS (MB) of a process and all its descendants, sampled every 0.2 s."""

    def __init__(self, root: int):
        self.root, self.peak_mb = root, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mb = max(self.peak_mb, sum(_rss_mb(p) for p in _tree(self.root)))


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parents[int(entry.name)] = _ppid(entry)
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _ppid(entry: Path) -> int:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _report(results: list[dict], wall: float, peak_mb: float, args: argparse.Namespace) -> None:
    ok = [r for r in results if r["ok"]]
    lat = sorted(r["latency"] for r in ok) or [float("nan")]
    p95 = lat[min(len(lat) - 1, int(np.ceil(0.95 * len(lat))) - 1)]
    mode = "RQ workers" if args.queue else "workers"
    print(f"jobs {len(results)}, ok {len(ok)}, failed {len(results) - len(ok)} "
          f"({mode} {args.workers}, size {args.size}, cores {os.cpu_count()})")
    print(f"wall {wall:.1f} s, throughput {len(ok) / wall * 60:.1f} jobs/min")
    print(f"latency submit→done: p50 {statistics.median(lat):.1f} s, p95 {p95:.1f} s, "
          f"max {lat[-1]:.1f} s")
    print(f"peak RSS, server + workers: {peak_mb:.0f} MB")
    for r in results:
        if not r["ok"]:
            print("  failed:", r["why"])


if __name__ == "__main__":
    main()
