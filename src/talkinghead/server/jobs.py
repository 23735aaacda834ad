"""Jobs: a table in memory, a folder each under the data directory, a bounded pool of workers.

Worker model: ``workers`` supervisor threads each take the next queued job and run it in its own
process, forked from a fork server that has already imported the pipeline (so a job starts in
milliseconds, not the seconds that importing MediaPipe takes). A process per job, rather than a
thread, because:

- a crash in native code (MediaPipe, ffmpeg, OpenCV) kills one job, not the server;
- memory a job used is returned to the system when it ends, so the server stays bounded;
- cancelling (``DELETE``) or a timeout can stop a job at once (SIGTERM), which a thread cannot;
- rendering holds the GIL for long stretches; in a thread it would slow every HTTP answer.

The fork server is single-threaded, so forking it is safe although the web server runs threads.
Job ids are server-made uuid4 hex strings and folder names; nothing a client sends names a file.
Each job's state is also kept in its folder (``STATE``), so a restarted server takes its jobs
back: finished ones until they expire, queued ones and those a stop interrupted queued again.
Finished jobs (done, failed) are removed ``ttl_s`` seconds after they finish.
"""
from __future__ import annotations

import json
import multiprocessing
import queue
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import LimitError, Limits
from .worker import OUTCOME, SPEC, VIDEO, run_job

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = frozenset({DONE, FAILED})
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_POLL_S = 0.1
_TERMINATE_GRACE_S = 5.0
STATE = "state.json"
_SAVED = ("created", "status", "started", "finished", "error", "frames_done", "frames_total")


@dataclass
class Job:
    """One request to render. Times are ``time.time()`` seconds; ``folder`` holds its files."""

    id: str
    folder: Path
    created: float = field(default_factory=time.time)
    status: str = QUEUED
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    frames_done: int = 0
    frames_total: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def video(self) -> Path:
        """Where the mp4 is (once ``status`` is done)."""
        return self.folder / VIDEO

    def save(self) -> None:
        """Write the job's state to its folder (atomically: a crash leaves the old one)."""
        tmp = self.folder / (STATE + ".tmp")
        tmp.write_text(json.dumps({k: getattr(self, k) for k in _SAVED}), encoding="utf-8")
        tmp.replace(self.folder / STATE)

    @classmethod
    def load(cls, folder: Path) -> Job | None:
        """The job saved in ``folder``; None when it holds no readable state."""
        try:
            state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            return cls(folder.name, folder, **{k: state[k] for k in _SAVED})
        except (OSError, ValueError, KeyError, TypeError):
            return None


class JobManager:
    """Accepts jobs up to a queue limit, runs them on ``workers`` processes, expires them."""

    def __init__(self, data_dir: Path, workers: int = 1, ttl_s: float = 3600.0,
                 limits: Limits | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.root = Path(data_dir) / "jobs"
        self.workers, self.ttl_s, self.limits = workers, float(ttl_s), limits or Limits()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Create the data directory, take back an earlier run's jobs, start the threads."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._recover()
        _fork_context()  # start the fork server now, not on the first request
        for i in range(self.workers):
            self._spawn(self._work, f"talkinghead-worker-{i}")
        self._spawn(self._janitor, "talkinghead-janitor")

    def stop(self) -> None:
        """Stop every running job and the threads; queued and interrupted jobs stay on disk,
        for the next start."""
        self._stopping.set()
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        for t in self._threads:
            t.join(timeout=_TERMINATE_GRACE_S + 1)
        self._threads.clear()

    def _recover(self) -> None:
        """Take back the jobs in the data directory (``_saved_jobs``); queue the unfinished."""
        with self._lock:
            for job in self._saved_jobs():
                self._jobs[job.id] = job
                if job.status == QUEUED:
                    self._queue.put(job.id)
        self.expire()

    def _saved_jobs(self) -> list[Job]:
        """The jobs an earlier run left in the data directory, oldest first: finished ones as
        they were (a done one only with its video), queued and interrupted ones as queued.
        Folders without a readable state (a job not yet submitted) are removed."""
        jobs = []
        for child in self.root.iterdir():
            if not (child.is_dir() and JOB_ID.match(child.name)):
                continue
            job = Job.load(child)
            if job is None or (job.status == DONE and not job.video.is_file()):
                shutil.rmtree(child, ignore_errors=True)
                continue
            if job.status not in FINISHED:
                job.status, job.started, job.frames_done, job.frames_total = QUEUED, None, 0, 0
                (child / OUTCOME).unlink(missing_ok=True)
                job.save()
            jobs.append(job)
        return sorted(jobs, key=lambda j: j.created)

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ---------------------------------------------------------------------------- requests

    def check_capacity(self) -> None:
        """``LimitError`` 429 when the queue is full (checked before uploads are stored)."""
        with self._lock:
            queued = sum(j.status == QUEUED for j in self._jobs.values())
        if queued >= self.limits.max_queued:
            raise LimitError(429, "queue_full", f"{queued} jobs are waiting, the limit is "
                             f"{self.limits.max_queued}; try again in a minute")

    def new_job(self) -> Job:
        """A fresh job with its empty folder; not yet queued (its inputs are stored first)."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir(parents=True)
        return Job(job_id, folder)

    def submit(self, job: Job, spec: dict[str, Any]) -> None:
        """Write the job's spec and queue it; 429 when the queue filled up meanwhile."""
        (job.folder / SPEC).write_text(json.dumps(spec), encoding="utf-8")
        with self._lock:
            queued = sum(j.status == QUEUED for j in self._jobs.values())
            if queued >= self.limits.max_queued:
                raise LimitError(429, "queue_full", "the queue is full; try again in a minute")
            self._jobs[job.id] = job
            job.save()
        self._queue.put(job.id)

    def discard(self, job: Job) -> None:
        """Remove a job that was never queued (its inputs were refused)."""
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (for any string, well-formed or not)."""
        if not JOB_ID.match(job_id):
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def delete(self, job_id: str) -> Job | None:
        """Cancel a queued or running job, or remove a finished one; None when unknown."""
        job = self.get(job_id)
        if job is None:
            return None
        with self._lock:
            self._jobs.pop(job.id, None)
            running = job.status == RUNNING
            if job.status == QUEUED:
                job.status = CANCELLED
            job.cancel.set()
        if not running:  # a running job's worker removes the folder once its process is gone
            shutil.rmtree(job.folder, ignore_errors=True)
        return job

    def worker_count(self) -> int:
        """Jobs that can render at once (for /healthz)."""
        return self.workers

    def counts(self) -> dict[str, int]:
        """Jobs per status (for /healthz)."""
        with self._lock:
            statuses = [j.status for j in self._jobs.values()]
        return {s: statuses.count(s) for s in (QUEUED, RUNNING, DONE, FAILED)}

    def queue_position(self, job: Job) -> int | None:
        """0 for the next job to start, None when not queued."""
        if job.status != QUEUED:
            return None
        with self._lock:
            return sum(j.status == QUEUED and j.created < job.created for j in self._jobs.values())

    def expires_at(self, job: Job) -> float | None:
        """When a finished job will be removed."""
        return job.finished + self.ttl_s if job.finished is not None else None

    # ---------------------------------------------------------------------------- workers

    def _work(self) -> None:
        """A supervisor thread: run queued jobs one at a time until stopped."""
        while not self._stopping.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            job = self._claim(job_id)
            if job is not None:
                self._run(job)

    def _claim(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != QUEUED or job.cancel.is_set():
                return None
            job.status, job.started = RUNNING, time.time()
            job.save()
            return job

    def _run(self, job: Job) -> None:
        """Run ``job`` in a fresh process; record its outcome or clean up after a cancel."""
        ctx = _fork_context()
        shared = ctx.Array("q", 2, lock=False)
        proc = ctx.Process(target=run_job, args=(str(job.folder), shared),
                           name=f"talkinghead-job-{job.id[:8]}")
        proc.start()
        timed_out = self._watch(job, proc, shared)
        if job.cancel.is_set():
            if not self._stopping.is_set():  # a cancel; a stop leaves the job for the next start
                shutil.rmtree(job.folder, ignore_errors=True)
            return
        self._finish(job, proc.exitcode, timed_out)

    def _watch(self, job: Job, proc, shared) -> bool:
        """Follow the process until it ends; stop it on cancel or timeout (returns timed out)."""
        deadline = time.monotonic() + self.limits.job_timeout_s
        while proc.is_alive():
            proc.join(_POLL_S)
            job.frames_done, job.frames_total = int(shared[0]), int(shared[1])
            late = time.monotonic() > deadline
            if job.cancel.is_set() or late:
                _stop_process(proc)
                return late
        return False

    def _finish(self, job: Job, exitcode: int | None, timed_out: bool) -> None:
        error = _outcome_error(job.folder, exitcode, timed_out, self.limits.job_timeout_s)
        with self._lock:
            job.finished = time.time()
            job.status, job.error = (FAILED, error) if error else (DONE, None)
            if job.status == DONE:
                job.frames_done = job.frames_total
            job.save()

    # ---------------------------------------------------------------------------- expiry

    def _janitor(self) -> None:
        interval = max(0.05, min(30.0, self.ttl_s / 4))
        while not self._stopping.wait(interval):
            self.expire()

    def expire(self, now: float | None = None) -> int:
        """Remove finished jobs older than the time to live; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j for j in self._jobs.values()
                   if j.status in FINISHED and j.finished is not None and now - j.finished >= self.ttl_s]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)
        return len(old)


def _outcome_error(folder: Path, exitcode: int | None, timed_out: bool, timeout_s: float) -> str | None:
    """None when the job made its video, else the message for the client."""
    if timed_out:
        return f"the job took longer than {timeout_s:g} s and was stopped"
    try:
        outcome = json.loads((folder / OUTCOME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        outcome = None
    if exitcode == 0 and outcome is not None:
        if outcome.get("ok") and (folder / VIDEO).is_file():
            return None
        return str(outcome.get("error") or "no video was produced")
    if exitcode is not None and exitcode < 0:
        return f"internal error: the worker process was killed by signal {-exitcode}"
    return f"internal error: the worker process failed (exit code {exitcode}); see the server log"


def _stop_process(proc) -> None:
    """SIGTERM, then SIGKILL if the process is still there after a grace period."""
    proc.terminate()
    proc.join(_TERMINATE_GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()


_CONTEXT_LOCK = threading.Lock()
_CONTEXT: Any = None


def _fork_context():
    """The forkserver context, its server preloading the pipeline (started once per process)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["talkinghead.server.worker"])
            from multiprocessing import forkserver

            forkserver.ensure_running()
            _CONTEXT = ctx
        return _CONTEXT
