"""Scale-out: a real Redis, two ``talkinghead worker`` processes, the app in queue mode.

Everything listens on 127.0.0.1 only; every wait is bounded. Skips when Debian's redis-server or
the scale extra (rq) is missing.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REDIS = Path("/usr/bin/redis-server")
pytestmark = pytest.mark.skipif(not REDIS.exists(), reason="redis-server is not installed "
                                "(apt-get install redis-server)")
pytest.importorskip("rq")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from talkinghead.server.app import Settings, create_app  # noqa: E402

JOBS, WORKERS, SIZE = 4, 2, 128
START_WAIT_S, JOB_WAIT_S, STOP_WAIT_S = 60.0, 120.0, 60.0  # generous: a loaded CI machine is slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Signal ``proc``, wait a bounded time, then kill it → its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_WAIT_S)
    return proc.returncode


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private redis-server on a free loopback port, no persistence → its URL."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    port, workdir = _free_port(), tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([str(REDIS), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            Redis.from_url(url).ping()
            break
        except RedisConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                _stop(proc)
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield url
    _stop(proc)


@pytest.fixture(scope="module")
def workers(redis_url, tmp_path_factory):
    """Two ``talkinghead worker`` processes on the queue, ready → their Popen objects."""
    from redis import Redis
    from rq import Worker

    logs = tmp_path_factory.mktemp("workers")
    procs = [_worker(redis_url, f"w{i}", logs / f"w{i}.log") for i in range(WORKERS)]
    conn = Redis.from_url(redis_url)
    deadline = time.monotonic() + START_WAIT_S
    while len(Worker.all(connection=conn)) < WORKERS:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                _stop(p)
            pytest.fail("workers did not start: " + " | ".join(
                (logs / f"w{i}.log").read_text(errors="replace")[-500:] for i in range(WORKERS)))
        time.sleep(0.1)
    yield procs
    for p in procs:
        _stop(p)


def _worker(redis_url: str, name: str, log_path: Path, *options: str) -> subprocess.Popen:
    """A ``talkinghead worker`` process on the queue, logging to ``log_path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(log_path, "wb") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "talkinghead", "worker", "--queue", redis_url,
                                 "--name", name, *options], env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def _submit(client, portrait: Path, wav: Path, seed: int) -> str:
    files = {"image": ("photo.jpg", portrait.read_bytes(), "image/jpeg"),
             "audio": ("speech.wav", wav.read_bytes(), "audio/wav")}
    r = client.post("/v1/videos", files=files, data={"size": str(SIZE), "seed": str(seed)})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _noise_image(path: Path) -> Path:
    """A photo without a face."""
    from PIL import Image

    pixels = np.random.default_rng(0).random((64, 64, 3)) * 40 + 100
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _wait_all(client, ids: list[str]) -> dict[str, dict]:
    """Poll until every job is done or failed (bounded) → the last status of each."""
    deadline, seen = time.monotonic() + JOB_WAIT_S, {}
    while time.monotonic() < deadline:
        seen = {i: client.get(f"/v1/videos/{i}").json() for i in ids}
        if all(j["status"] in ("done", "failed") for j in seen.values()):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"jobs did not finish in {JOB_WAIT_S} s: {seen}")


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    """About a second of synthetic speech as a 16-bit wav file."""
    from talkinghead.audio.tts import synthesize

    from talkinghead.media import write_wav

    return write_wav(tmp_path_factory.mktemp("speech") / "hi.wav", synthesize("Hello there.").waveform)


def test_two_workers_render_queued_jobs_served_by_the_api(redis_url, workers, portrait_path,
                                                          speech_wav, tmp_path):
    from redis import Redis
    from rq import Worker

    from talkinghead.media import probe_video

    data = tmp_path / "data"
    with TestClient(create_app(Settings(data_dir=data, queue_url=redis_url))) as client:
        assert client.get("/healthz").json()["workers"] == WORKERS
        ids = [_submit(client, portrait_path, speech_wav, seed) for seed in range(JOBS)]
        faceless = _submit(client, _noise_image(tmp_path / "wall.png"), speech_wav, 0)
        jobs = _wait_all(client, ids + [faceless])
        failed = jobs.pop(faceless)
        assert failed["status"] == "failed" and "face" in failed["error"].lower(), failed
        assert "/tmp" not in failed["error"]
        assert client.get(f"/v1/videos/{faceless}/video").status_code == 409
        for job_id, job in jobs.items():
            assert job["status"] == "done", job
            assert job["progress"] == 1.0 and job["frames_total"] > 10
            out = tmp_path / f"{job_id}.mp4"
            out.write_bytes(client.get(job["video_url"]).content)
            info = probe_video(out)
            assert (info.width, info.height) == (SIZE, SIZE) and info.has_audio
            assert info.num_frames == job["frames_total"]
            part = client.get(job["video_url"], headers={"Range": "bytes=0-99"})
            assert part.status_code == 206 and len(part.content) == 100
        assert client.delete(f"/v1/videos/{ids[0]}").status_code == 204
        assert client.get(f"/v1/videos/{ids[0]}").status_code == 404
    conn = Redis.from_url(redis_url)
    counts = {w.name: w.successful_job_count for w in Worker.all(connection=conn)}
    assert sorted(counts) == [f"w{i}" for i in range(WORKERS)] and all(counts.values()), counts
    assert sum(counts.values()) == JOBS + 1  # a user error (no face) is a normal outcome
    assert not conn.keys("rq:job:*"), "collected jobs are deleted from Redis"
    assert sorted(p.name for p in (data / "jobs").iterdir()) == sorted(ids[1:] + [faceless])
    for proc in workers:
        assert _stop(proc, signal.SIGINT) in (0, -signal.SIGINT, -signal.SIGTERM)


def test_cancel_a_queued_job_removes_it_from_the_queue(redis_url, workers, portrait_path,
                                                       speech_wav, tmp_path):
    """With the workers gone, a job stays queued; DELETE withdraws it from Redis too."""
    from redis import Redis

    for proc in workers:
        _stop(proc, signal.SIGINT)
    settings = Settings(data_dir=tmp_path / "data", queue_url=redis_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json()["workers"] == 0
        job_id = _submit(client, portrait_path, speech_wav, 0)
        time.sleep(0.5)
        job = client.get(f"/v1/videos/{job_id}").json()
        assert job["status"] == "queued" and job["queue_position"] == 0
        assert client.delete(f"/v1/videos/{job_id}").status_code == 204
    assert not Redis.from_url(redis_url).exists(f"rq:job:{job_id}")


def test_a_restarted_server_collects_the_jobs_it_left_on_the_queue(redis_url, portrait_path,
                                                                  speech_wav, tmp_path):
    """A stop leaves the waiting jobs on Redis; the next server on the same data directory takes
    them back, queues again from its folder one that Redis lost, and serves both videos once a
    worker has rendered them."""
    from redis import Redis
    from rq.job import Job as RQJob

    conn = Redis.from_url(redis_url)
    settings = Settings(data_dir=tmp_path / "data", queue_url=redis_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json()["workers"] == 0
        kept, lost = (_submit(client, portrait_path, speech_wav, seed) for seed in (0, 1))
    assert conn.exists(f"rq:job:{kept}") and conn.exists(f"rq:job:{lost}")
    RQJob.fetch(lost, connection=conn).delete()  # as if Redis had been flushed meanwhile
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/videos/{kept}").json()["status"] == "queued"
        assert conn.exists(f"rq:job:{lost}")
        worker = _worker(redis_url, "restart", tmp_path / "worker.log", "--burst")
        try:
            jobs = _wait_all(client, [kept, lost])
        finally:
            _stop(worker)
        for job in jobs.values():
            assert job["status"] == "done", job
            assert client.get(job["video_url"]).content[4:8] == b"ftyp"
            assert job["created_at"] <= job["started_at"] <= job["finished_at"]


def test_a_stop_requested_as_a_job_is_wrapped_up_does_not_wait_on_the_queue(redis_url):
    """RQ reads its stop flag before it blocks on the queue; a SIGINT landing while the worker
    is still busy with a finished job (the flag set, no exception) must not leave it blocked
    there: the worker returns at once, and any block on an empty queue is short."""
    from redis import Redis
    from rq import Queue

    from talkinghead.server.scale import DEQUEUE_S, QUEUE_NAME, _Worker

    conn = Redis.from_url(redis_url)
    worker = _Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn, name="stopping")
    worker._stop_requested = True
    start = time.monotonic()
    assert worker.dequeue_job_and_maintain_ttl(worker.dequeue_timeout, max_idle_time=3) is None
    assert time.monotonic() - start < 1.0
    assert worker.dequeue_timeout == DEQUEUE_S <= 10


def test_a_worker_unsubscribes_at_once_even_when_its_listener_waits(redis_url):
    """The worker's pub/sub listener thread that has already read the unsubscribe reply waits
    60 s for a new subscription; redis-py 8 joins that thread in ``stop()``, so a worker that
    stopped right after a job hung there (6 of 20 in a loop; once in a CI run). Shutting down
    must not wait for it."""
    from redis import Redis
    from rq import Queue

    from talkinghead.server.scale import QUEUE_NAME, _Worker

    conn = Redis.from_url(redis_url)
    worker = _Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn, name="listening")
    worker.subscribe()
    deadline = time.monotonic() + 10
    while not worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.pubsub.unsubscribe()
    while worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)  # the listener read the reply: it now waits for a subscription
    time.sleep(0.2)
    start = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - start < 2.0
