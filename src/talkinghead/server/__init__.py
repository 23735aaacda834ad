"""HTTP service over the pipeline: ``talkinghead serve`` (FastAPI + uvicorn, extra ``[server]``).

Importing this package is light; FastAPI is imported only by ``talkinghead.server.app``.

    app.py      routes: POST/GET/DELETE /v1/videos, /healthz, the web page, offline API docs
    jobs.py     job table, bounded worker pool (one forked process per job), expiry
    limits.py   request limits (upload bytes, image pixels, audio seconds, queue length)
    options.py  form fields / CSV columns → ``Config``, derived from the config dataclasses
    scale.py    scale-out: jobs on RQ workers through Redis (``serve --queue``, ``worker``)
    worker.py   what runs inside a job's process
"""
