"""``talkinghead serve``: its flags, and starting uvicorn on the app."""
from __future__ import annotations

import argparse
from pathlib import Path

from .limits import MIB, Limits


def add_serve_command(sub) -> None:
    """Add the ``serve`` subcommand to the CLI's subparsers."""
    d = Limits()
    p = sub.add_parser("serve", help="HTTP API and web page (needs the server extra)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", default="talkinghead-data",
                   help="folder for job files (the server's own: stale job folders are removed)")
    p.add_argument("--workers", type=int, default=1, help="jobs rendered at once (one process each)")
    p.add_argument("--ttl", type=float, default=3600.0, help="seconds a finished job is kept")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / MIB,
                   help="largest request body, MiB")
    p.add_argument("--max-audio-seconds", type=float, default=d.max_audio_seconds)
    p.add_argument("--max-queued", type=int, default=d.max_queued, help="jobs waiting at most")
    p.add_argument("--job-timeout", type=float, default=d.job_timeout_s, help="seconds per job")
    p.add_argument("--max-live", type=int, default=2,
                   help="live sessions (WebSocket /v1/live) at once, rendered in this process")
    p.add_argument("--queue", default=None, metavar="redis://HOST:PORT/DB",
                   help="render on 'talkinghead worker' processes through this Redis instead of "
                        "local processes (needs the scale extra)")
    p.add_argument("--ssl-certfile", default=None, metavar="PEM",
                   help="serve https (and wss) with this certificate: browsers give pages from "
                        "other machines the camera and microphone only over https")
    p.add_argument("--ssl-keyfile", default=None, metavar="PEM", help="the certificate's private key")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=serve)


def add_worker_command(sub) -> None:
    """Add the ``worker`` subcommand: an RQ worker for ``serve --queue``."""
    p = sub.add_parser("worker", help="render jobs for 'serve --queue' (needs the scale extra)")
    p.add_argument("--queue", required=True, metavar="redis://HOST:PORT/DB",
                   help="the Redis the server queues jobs on")
    p.add_argument("--name", default=None, help="worker name (default: a random id)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=worker)


def worker(args: argparse.Namespace) -> int:
    """Take and render jobs until interrupted (SIGINT/SIGTERM: after the job in hand)."""
    from talkinghead.errors import UserError

    try:
        from .scale import run_worker
    except ImportError as exc:
        raise UserError(f"worker needs the scale extra: pip install 'talkinghead[scale]' ({exc})") \
            from exc
    run_worker(args.queue, name=args.name, burst=args.burst, quiet=args.quiet)
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from talkinghead.errors import UserError

    try:
        import uvicorn

        from .app import Settings, create_app
    except ImportError as exc:
        raise UserError(f"serve needs the server extra: pip install 'talkinghead[server]' ({exc})") \
            from exc
    if args.workers < 1 or args.ttl <= 0 or args.max_live < 0:
        raise UserError("--workers must be >= 1, --ttl > 0 and --max-live >= 0")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * MIB),
                    max_audio_seconds=args.max_audio_seconds, max_queued=args.max_queued,
                    job_timeout_s=args.job_timeout)
    if args.queue is not None:
        _check_scale_extra()
    settings = Settings(Path(args.data_dir), args.workers, args.ttl, limits, queue_url=args.queue,
                        max_live=args.max_live)
    uvicorn.run(create_app(settings), host=args.host, port=args.port,
                log_level="warning" if args.quiet else "info", **_tls(args))
    return 0


def _tls(args: argparse.Namespace) -> dict[str, str]:
    """uvicorn's TLS arguments from ``--ssl-certfile`` / ``--ssl-keyfile`` (both or neither)."""
    from talkinghead.errors import UserError

    files = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
    given = {k: v for k, v in files.items() if v}
    if not given:
        return {}
    if len(given) == 1:
        raise UserError("https needs both --ssl-certfile and --ssl-keyfile")
    for name, path in given.items():
        if not Path(path).is_file():
            raise UserError(f"--{name.replace('_', '-')}: no such file: {path}")
    return given


def _check_scale_extra() -> None:
    """``UserError`` when rq (the scale extra) is not installed."""
    from talkinghead.errors import UserError

    try:
        import rq  # noqa: F401
    except ImportError as exc:
        raise UserError("--queue needs the scale extra: pip install 'talkinghead[scale]' "
                        f"({exc})") from exc
