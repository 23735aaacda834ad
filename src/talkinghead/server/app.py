"""The FastAPI app: the jobs API under /v1, /healthz, the web page at /, offline docs at /docs.

Errors are JSON: ``{"error": {"code": "...", "message": "..."}}`` with a 4xx status for anything
the client can fix (413 too large, 422 invalid, 429 queue full, 404 unknown, 409 not ready).
"""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from talkinghead import __version__
from talkinghead.config import Config

from .jobs import DONE, Job, JobManager
from .limits import LimitError, Limits, check_audio, check_image, check_text, checked_config
from .live import LiveSessions, live_session
from .options import available_options, config_to_dict
from .worker import AUDIO, IMAGE

STATIC = Path(__file__).with_name("static")
_INPUT_FIELDS = ("image", "audio", "text")
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """How the server runs: where job files go, how many jobs render at once, how long finished
    jobs are kept (seconds), and the request limits. ``queue_url`` (redis://...): render on RQ
    workers instead of local processes (``workers`` is then unused; see ``scale.py``).
    ``max_live``: live sessions (``/v1/live``) at once, rendered in this process."""

    data_dir: Path = Path("talkinghead-data")
    workers: int = 1
    ttl_s: float = 3600.0
    limits: Limits = field(default_factory=Limits)
    queue_url: str | None = None
    max_live: int = 2


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; its job workers start and stop with it (ASGI lifespan)."""
    settings = settings or Settings()
    manager = _manager(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            manager.stop()

    app = FastAPI(title="talkinghead", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Portrait + speech → talking-head video. Submit a job, poll it, "
                              "fetch the mp4.")
    app.state.manager = manager
    _add_error_handlers(app)
    _add_page_routes(app)
    sessions = LiveSessions(settings.max_live)
    _add_api_routes(app, manager, settings.limits, sessions)
    _add_live_route(app, settings.limits, sessions)
    return app


def _manager(settings: Settings) -> JobManager:
    """The local process pool, or the Redis queue when ``queue_url`` is set."""
    if settings.queue_url is None:
        return JobManager(settings.data_dir, settings.workers, settings.ttl_s, settings.limits)
    from .scale import RedisJobManager

    return RedisJobManager(settings.data_dir, settings.queue_url, settings.ttl_s, settings.limits)


# -------------------------------------------------------------------------------- errors


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LimitError)
    async def limit_error(_: Request, exc: LimitError) -> JSONResponse:
        headers = {"Retry-After": "30"} if exc.status == 429 else None
        return _error(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc.errors()))


# -------------------------------------------------------------------------------- page and docs


def _add_page_routes(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        """API reference rendered from /openapi.json by a small local script (no CDN)."""
        return FileResponse(STATIC / "docs.html", media_type="text/html")


# -------------------------------------------------------------------------------- API


_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {
            "image": {"type": "string", "format": "binary", "description": "portrait photo"},
            "audio": {"type": "string", "format": "binary",
                      "description": "speech (any format ffmpeg reads); or give text"},
            "text": {"type": "string", "description": "words to speak by offline text-to-speech"},
        },
        "additionalProperties": {"type": "string", "description":
                                 "options, as listed by GET /v1/options (e.g. pose_style=3)"},
    }}}},
}


def _add_api_routes(app: FastAPI, manager: JobManager, limits: Limits,
                    sessions: LiveSessions) -> None:
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness, worker count, jobs per status and live sessions (in use, at most)."""
        return {"status": "ok", "version": __version__, "workers": manager.worker_count(),
                "jobs": manager.counts(),
                "live": {"active": sessions.active, "max": sessions.limit}}

    @app.get("/v1/options", tags=["videos"])
    async def options() -> dict[str, Any]:
        """The options a job accepts (name, type, default, choices) and the server's limits."""
        return {"options": [o.describe() for o in available_options(allow_paths=False).values()],
                "limits": limits.describe(), "ttl_s": manager.ttl_s}

    @app.post("/v1/videos", status_code=202, tags=["videos"], openapi_extra=_UPLOAD_SCHEMA)
    async def create_video(request: Request) -> JSONResponse:
        """Submit a job (multipart: image, audio or text, options) → its id; 202 Accepted."""
        manager.check_capacity()
        form = await _read_form(request, limits)
        try:
            job = manager.new_job()
            try:
                spec = await run_in_threadpool(_store_inputs, form, job.folder, limits)
                manager.submit(job, spec)
            except BaseException:
                manager.discard(job)
                raise
        finally:
            await form.close()
        return JSONResponse(_describe(manager, job), 202,
                            headers={"Location": f"/v1/videos/{job.id}"})

    @app.get("/v1/videos/{job_id}", tags=["videos"])
    async def get_video(job_id: str) -> dict[str, Any]:
        """Status (queued, running, done, failed) and progress of a job."""
        return _describe(manager, _find(manager, job_id))

    @app.get("/v1/videos/{job_id}/video", tags=["videos"],
             responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "a byte range"}})
    async def get_video_file(job_id: str, download: bool = False) -> FileResponse:
        """The mp4 of a finished job; Range requests give 206 (so players can seek)."""
        job = _find(manager, job_id)
        if job.status != DONE or not job.video.is_file():
            raise LimitError(409, "not_ready", f"the job is {job.status}; the video is not available")
        return FileResponse(job.video, media_type="video/mp4", filename=f"talkinghead-{job.id}.mp4",
                            content_disposition_type="attachment" if download else "inline")

    @app.delete("/v1/videos/{job_id}", status_code=204, tags=["videos"])
    async def delete_video(job_id: str) -> Response:
        """Cancel a queued or running job, or remove a finished one and its video."""
        if manager.delete(job_id) is None:
            raise LimitError(404, "not_found", "no such job (it may have expired)")
        return Response(status_code=204)


def _add_live_route(app: FastAPI, limits: Limits, sessions: LiveSessions) -> None:
    @app.websocket("/v1/live")
    async def live(ws: WebSocket) -> None:
        """A live session: portrait, then speech in, JPEG frames out (see ``server.live``)."""
        await live_session(ws, limits, sessions)


def _find(manager: JobManager, job_id: str) -> Job:
    job = manager.get(job_id)
    if job is None:
        raise LimitError(404, "not_found", "no such job (it may have expired)")
    return job


def _describe(manager: JobManager, job: Job) -> dict[str, Any]:
    """The JSON view of a job."""
    total = job.frames_total
    return {
        "id": job.id, "status": job.status, "error": job.error,
        "progress": round(job.frames_done / total, 4) if total else (1.0 if job.status == DONE else 0.0),
        "frames_done": job.frames_done, "frames_total": total,
        "queue_position": manager.queue_position(job),
        "created_at": job.created, "started_at": job.started, "finished_at": job.finished,
        "expires_at": manager.expires_at(job),
        "video_url": f"/v1/videos/{job.id}/video" if job.status == DONE else None,
    }


# -------------------------------------------------------------------------------- uploads


class _BodyTooLarge(Exception):
    """The request body went past the upload limit while it was being read."""


async def _read_form(request: Request, limits: Limits) -> FormData:
    """The multipart form, refusing (413) a body larger than the upload limit as it streams in."""
    limit = limits.max_upload_bytes
    too_large = LimitError(413, "upload_too_large", f"the upload is larger than the limit of "
                           f"{limit / (1024 * 1024):g} MiB; send smaller files")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise LimitError(415, "not_multipart", "send the job as multipart/form-data")
    counted = Request(request.scope, _counting_receive(request.receive, limit))
    try:
        return await counted.form(max_files=2, max_fields=64, max_part_size=64 * 1024)
    except _BodyTooLarge as exc:
        raise too_large from exc
    except MultiPartException as exc:
        raise LimitError(422, "bad_form", f"the form could not be read: {exc.message}") from exc


def _counting_receive(receive, limit: int):
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _BodyTooLarge()
        return message

    return wrapped


def _store_inputs(form: FormData, folder: Path, limits: Limits) -> dict[str, Any]:
    """Check the form and copy its files into ``folder`` under fixed names → the job's spec."""
    image, audio = _upload(form, "image"), _upload(form, "audio")
    text = form.get("text")
    text = text if isinstance(text, str) and text.strip() else None
    if image is None:
        raise LimitError(422, "missing_image", "upload a portrait photo in the field 'image'")
    if (audio is None) == (text is None):
        raise LimitError(422, "missing_speech", "give either an audio file ('audio') or 'text'")
    config = _config(form, limits)
    _copy(image, folder / IMAGE)
    check_image(folder / IMAGE, limits)
    if audio is not None:
        _copy(audio, folder / AUDIO)
        check_audio(folder / AUDIO, limits)
    else:
        text = check_text(text, limits)
    return {"config": config_to_dict(config), "text": text,
            "max_audio_seconds": limits.max_audio_seconds}


def _upload(form: FormData, name: str) -> UploadFile | None:
    """The uploaded file in field ``name``; None when absent or empty (no file chosen)."""
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value):
        return None
    if not isinstance(value, UploadFile):
        raise LimitError(422, f"bad_{name}", f"the field '{name}' must be a file upload")
    return value if value.size != 0 else None


def _config(form: FormData, limits: Limits) -> Config:
    """The job's Config from the form's option fields (every field but the inputs)."""
    raw: dict[str, str] = {}
    for key, value in form.multi_items():
        if key in _INPUT_FIELDS:
            continue
        if not isinstance(value, str):
            raise LimitError(422, "bad_option", f"the option '{key}' must be text, not a file")
        if key in raw:
            raise LimitError(422, "bad_option", f"the option '{key}' is given twice")
        raw[key] = value
    return checked_config(raw, limits)


def _copy(upload: UploadFile, target: Path) -> None:
    """Copy an upload (already spooled by the form parser) to ``target``."""
    upload.file.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(upload.file, out, _COPY_CHUNK)
