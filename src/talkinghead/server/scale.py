"""Scale-out: the same jobs rendered by RQ workers on other machines (extra ``[scale]``).

``talkinghead serve --queue redis://HOST:PORT/DB`` swaps the local process pool for a Redis queue
(RQ); ``talkinghead worker --queue redis://...`` (on as many machines as needed) takes jobs from
it. The API, its limits and the job table stay on the one server; only rendering moves.

Data flow — bytes through Redis, no shared file system:

- submit: the server checks and stores the upload as before, then enqueues the job's id, spec and
  input bytes (bounded by the upload limit); the job's folder keeps them and its state;
- worker: RQ forks a work horse per job from a worker that has already imported the pipeline (a
  crash kills one job; memory returns when it ends). The horse writes the inputs under fixed names
  in a private temporary folder, renders with ``server.worker.render``, reports progress in the
  RQ job's meta and returns ``{"ok": True, "video": mp4 bytes}`` or ``{"ok": False, "error"}``;
- collect: a thread on the server polls the jobs it is waiting for, copies progress, writes a
  finished video into the job's folder under the data directory (so Range requests, expiry and
  DELETE work as in local mode) and deletes the RQ job, so Redis holds each video only briefly.

A restarted server takes its jobs back from their folders, as in local mode: the jobs a stop
left on Redis go on there (rendering while the server is down) and are collected; one that Redis
no longer holds is queued again from its folder.

Job ids are the server's uuid4 hex strings; a worker names files only by fixed names in its own
temporary folder, so nothing a client sends becomes a path. RQ pickles job arguments: Redis must
be reachable only by the server and the workers (a private network, a password in the URL).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from datetime import timezone
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker, get_current_job
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from .jobs import DONE, FAILED, QUEUED, RUNNING, Job, JobManager
from .limits import LimitError, Limits
from .worker import AUDIO, IMAGE, SPEC, VIDEO

QUEUE_NAME = "talkinghead"
TASK = "talkinghead.server.scale.render_task"
_LOG = logging.getLogger(__name__)
_COLLECT_S = 0.2
_PROGRESS_EVERY_S = 0.25
DEQUEUE_S = 5  # a worker waits at most this long on an empty queue before it looks again
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED})


def connect(url: str) -> Redis:
    """A Redis client for ``url`` (redis://[:password@]host:port/db), checked with a PING."""
    conn = Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    conn.ping()
    return conn


class RedisJobManager(JobManager):
    """``JobManager`` whose jobs render on RQ workers; the job table, limits and expiry are the
    local manager's, the worker threads are replaced by one collector thread."""

    def __init__(self, data_dir: Path, queue_url: str, ttl_s: float = 3600.0,
                 limits: Limits | None = None):
        super().__init__(data_dir, 1, ttl_s, limits)
        self.queue_url = queue_url
        self._conn: Redis | None = None
        self._rq: Queue | None = None
        self._enqueuing: set[str] = set()  # in the table, not yet on Redis: not lost

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect to Redis, take back an earlier run's jobs, start the collector and the
        janitor."""
        self._conn = connect(self.queue_url)
        self._rq = Queue(QUEUE_NAME, connection=self._conn)
        self.root.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._spawn(self._collect_loop, "talkinghead-collector")
        self._spawn(self._janitor, "talkinghead-janitor")

    def stop(self) -> None:
        """Stop the threads. Jobs waiting or running on workers go on; the next start collects
        them."""
        super().stop()
        if self._conn is not None:
            self._conn.close()

    def _recover(self) -> None:
        """Take back the saved jobs; an unfinished one that Redis no longer holds is queued
        again from its folder, or fails when its inputs are gone."""
        jobs = self._saved_jobs()
        with self._lock:
            self._jobs.update((job.id, job) for job in jobs)
        waiting = [job for job in jobs if job.status == QUEUED]
        found = RQJob.fetch_many([job.id for job in waiting], connection=self._conn) if waiting else []
        for job, rq_job in zip(waiting, found):
            if rq_job is not None:
                continue
            try:
                self._enqueue(job.id, _payload(job))
            except (OSError, ValueError):
                self._end(job, "the job's inputs were lost while the server restarted")
        self.expire()

    def worker_count(self) -> int:
        """RQ workers listening on the queue now."""
        return Worker.count(queue=self._rq) if self._rq is not None else 0

    # ---------------------------------------------------------------------------- requests

    def submit(self, job: Job, spec: dict[str, Any]) -> None:
        """Queue the job on Redis with its inputs (429 when the queue filled up meanwhile). If
        Redis refuses, the job leaves the table again."""
        (job.folder / SPEC).write_text(json.dumps(spec), encoding="utf-8")
        payload = _payload(job)
        with self._lock:
            if sum(j.status == QUEUED for j in self._jobs.values()) >= self.limits.max_queued:
                raise LimitError(429, "queue_full", "the queue is full; try again in a minute")
            self._jobs[job.id] = job
            self._enqueuing.add(job.id)
            job.save()
        try:
            self._enqueue(job.id, payload)
        except BaseException:
            with self._lock:
                self._jobs.pop(job.id, None)
            raise
        finally:
            with self._lock:
                self._enqueuing.discard(job.id)

    def _enqueue(self, job_id: str, payload: dict[str, Any]) -> None:
        assert self._rq is not None, "start() first"
        ttl = int(self.ttl_s) + 60
        self._rq.enqueue(TASK, payload, job_id=job_id, job_timeout=int(self.limits.job_timeout_s),
                         result_ttl=ttl, failure_ttl=ttl, description=f"talkinghead job {job_id}")

    def delete(self, job_id: str) -> Job | None:
        """As in local mode, and the RQ job is cancelled (queued) or stopped (running)."""
        job = super().delete(job_id)
        if job is not None:
            self._withdraw(job.id)
            shutil.rmtree(job.folder, ignore_errors=True)
        return job

    def _withdraw(self, job_id: str) -> None:
        """Cancel or stop the RQ job and delete it (best effort: it may have just finished)."""
        try:
            rq_job = RQJob.fetch(job_id, connection=self._conn)
        except NoSuchJobError:
            return
        try:
            if rq_job.get_status() == JobStatus.STARTED:
                send_stop_job_command(self._conn, job_id)
            elif rq_job.get_status() in _WAITING:
                rq_job.cancel()
        except InvalidJobOperation:
            pass
        rq_job.delete()

    # ---------------------------------------------------------------------------- collecting

    def _collect_loop(self) -> None:
        """Collect until stopped; a Redis outage is logged and retried, jobs stay as they were."""
        while not self._stopping.wait(_COLLECT_S):
            try:
                self.collect()
            except RedisError as exc:
                _LOG.warning("talkinghead: the job queue is unreachable (%s); retrying", exc)
                self._stopping.wait(2.0)

    def collect(self) -> None:
        """One pass: update every waiting or running job from its RQ job."""
        with self._lock:
            active = [j for j in self._jobs.values()
                      if j.status in (QUEUED, RUNNING) and j.id not in self._enqueuing]
        if not active:
            return
        found = RQJob.fetch_many([j.id for j in active], connection=self._conn)
        for job, rq_job in zip(active, found):
            self._update(job, rq_job)

    def _update(self, job: Job, rq_job: RQJob | None) -> None:
        """Copy status and progress; on an end, collect the video or the error."""
        if rq_job is None:
            return self._end(job, "internal error: the job was lost from the queue")
        status = rq_job.get_status(refresh=False)
        if status in _WAITING:
            return None
        frames = rq_job.meta.get("frames") or (0, 0)
        with self._lock:
            if job.status == QUEUED and not job.cancel.is_set():
                job.status, job.started = RUNNING, _started_at(rq_job)
                job.save()
            job.frames_done, job.frames_total = int(frames[0]), int(frames[1])
        if status == JobStatus.FINISHED:
            return self._finish_rq(job, rq_job)
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            return self._end(job, _failure_message(rq_job, self.limits.job_timeout_s))
        return None

    def _finish_rq(self, job: Job, rq_job: RQJob) -> None:
        """Write the returned video into the job's folder (atomically), or record its error."""
        outcome = rq_job.return_value() or {}
        error = None if outcome.get("ok") else str(outcome.get("error") or "no video was produced")
        if error is None and not job.cancel.is_set():
            error = _write_video(job, outcome["video"])
        self._end(job, error)
        rq_job.delete()

    def _end(self, job: Job, error: str | None) -> None:
        with self._lock:
            if job.cancel.is_set():
                return
            job.finished = time.time()
            job.status, job.error = (FAILED, error) if error else (DONE, None)
            if job.status == DONE:
                job.frames_done = job.frames_total
            job.save()


def _started_at(rq_job: RQJob) -> float:
    """When a worker started the job (``time.time()`` seconds; now where RQ does not say): a
    job that ran on while the server restarted keeps its real start."""
    started = rq_job.started_at
    if started is None:
        return time.time()
    return (started if started.tzinfo else started.replace(tzinfo=timezone.utc)).timestamp()


def _failure_message(rq_job: RQJob, timeout_s: float) -> str:
    info = rq_job.exc_info or ""
    if "JobTimeoutException" in info or "HorseMonitorTimeoutException" in info:
        return f"the job took longer than {timeout_s:g} s and was stopped"
    if rq_job.get_status(refresh=False) in (JobStatus.STOPPED, JobStatus.CANCELED):
        return "the job was stopped on its worker"
    return "internal error: the job failed on its worker; see the worker's log"


def _write_video(job: Job, video: bytes) -> str | None:
    """Write the mp4 atomically into the job's folder; an error message if that failed (a
    DELETE may have removed the folder meanwhile)."""
    tmp = job.folder / (VIDEO + ".part")
    try:
        tmp.write_bytes(video)
        os.replace(tmp, job.video)
    except OSError as exc:
        _LOG.warning("talkinghead: could not store the video of job %s: %s", job.id, exc)
        return "internal error: the video could not be stored on the server"
    return None


def _payload(job: Job) -> dict[str, Any]:
    """What a worker needs, from the job's folder: its id, spec and input bytes."""
    spec = json.loads((job.folder / SPEC).read_text(encoding="utf-8"))
    audio = job.folder / AUDIO
    return {"id": job.id, "spec": spec, "image": (job.folder / IMAGE).read_bytes(),
            "audio": audio.read_bytes() if audio.is_file() else None}


# -------------------------------------------------------------------------------- worker side


def render_task(payload: dict[str, Any]) -> dict[str, Any]:
    """The RQ task (runs in a work horse): inputs in, ``{"ok", "video" | "error"}`` out."""
    from talkinghead.errors import UserError

    from .worker import render

    with tempfile.TemporaryDirectory(prefix="talkinghead-job-") as tmp:
        folder = Path(tmp)
        (folder / SPEC).write_text(json.dumps(payload["spec"]), encoding="utf-8")
        (folder / IMAGE).write_bytes(payload["image"])
        if payload.get("audio") is not None:
            (folder / AUDIO).write_bytes(payload["audio"])
        try:
            render(folder, _meta_progress())
        except UserError as exc:
            return {"ok": False, "error": str(exc).replace(str(folder), "the job")}
        return {"ok": True, "video": (folder / VIDEO).read_bytes()}


def _meta_progress():
    """A progress callback that stores (done, total) in the current RQ job's meta, throttled."""
    job = get_current_job()
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if job is None or (now - last[0] < _PROGRESS_EVERY_S and done < total):
            return
        last[0] = now
        job.meta["frames"] = (done, total)
        job.save_meta()

    return report


class _Worker(Worker):
    """RQ's worker, without two waits at shutdown.

    RQ 3.0's ``unsubscribe`` ends with ``pubsub.close()``, which waits for the listening
    thread, and that thread may be back in a 60 s read (its ``sleep_time``; rq/rq#1613): in 3
    of 6 full test runs here a worker's log ended at "unsubscribing" and SIGINT did not stop it
    within 20-60 s. redis-py 8's ``PubSubWorkerThread.stop()`` waits for the thread too (a
    thread that read the unsubscribe reply before the stop waits 60 s for a subscription): 6
    of 20 workers stopped right after their last job hung there. The thread is a daemon and
    this runs only as the worker shuts down, so it is asked to stop, not waited for, and the
    connection is left to the process's exit.

    A stop requested while a finished job is still being wrapped up (the worker still busy)
    only sets a flag, which RQ's loop reads before it blocks on the queue; a signal landing
    after that read left the worker in that block for up to 405 s (``worker_ttl`` - 15): once
    in a full test run a worker logged "warm shut down requested" and never exited. The flag is
    read again just before blocking, and a block lasts at most DEQUEUE_S."""

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_S

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if self._stop_requested:
            return None  # RQ's loop ends on None, as after an idle timeout
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def unsubscribe(self) -> None:
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            try:
                self.pubsub_thread.stop(timeout=0)
            except TypeError:  # redis-py before 8: stop() takes no timeout, and does not wait
                self.pubsub_thread.stop()


def run_worker(queue_url: str, name: str | None = None, burst: bool = False,
               quiet: bool = False) -> bool:
    """Run an RQ worker on the talkinghead queue until stopped (SIGTERM/SIGINT: after the job
    in hand) or, with ``burst``, until the queue is empty; True when it rendered any job."""
    import talkinghead.server.worker  # noqa: F401  imported once here, so work horses fork warm

    conn = connect(queue_url)
    worker = _Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn, name=name)
    return worker.work(burst=burst, logging_level="WARNING" if quiet else "INFO")
