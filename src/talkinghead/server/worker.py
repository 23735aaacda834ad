"""What runs inside a job's worker process: inputs in the job folder → ``video.mp4`` beside them.

The parent preloads this module in its fork server, so a job's process starts in milliseconds
with the pipeline already imported. The outcome is written to ``outcome.json`` in the job folder:
``{"ok": true}`` or ``{"ok": false, "error": "..."}`` for a user error (no face, bad audio ...).
Any other exception escapes, the process exits non-zero, and the parent reports an internal error.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from talkinghead.errors import UserError
from talkinghead.pipeline import Pipeline  # preloaded: the heavy imports happen once

IMAGE, AUDIO, VIDEO, SPEC, OUTCOME = "image", "audio", "video.mp4", "spec.json", "outcome.json"


def run_job(job_dir: str, progress: Sequence[int] | Any = None) -> None:
    """Render the job in ``job_dir`` (its ``spec.json`` says how); ``progress``: a shared
    two-slot integer array that receives (frames done, frames total)."""
    folder = Path(job_dir)
    try:
        render(folder, _progress_callback(progress))
        outcome: dict[str, Any] = {"ok": True}
    except UserError as exc:
        outcome = {"ok": False, "error": str(exc).replace(str(folder), "the job")}
    _write_json(folder / OUTCOME, outcome)


def render(folder: Path, progress=None) -> None:
    """Steps: read the spec, get the photo and the speech (upload or text-to-speech), animate."""
    from talkinghead.media import load_audio, load_image

    from .options import config_from_dict

    spec = json.loads((folder / SPEC).read_text(encoding="utf-8"))
    config = config_from_dict(spec["config"])
    portrait = load_image(folder / IMAGE)
    phones = None
    if spec.get("text"):
        from talkinghead.audio.tts import synthesize, voice_for

        speech = synthesize(spec["text"], voice_for(config.motion.language))
        waveform, phones = speech.waveform, speech.phones
    else:
        waveform = load_audio(folder / AUDIO)
    check_seconds_or_user_error(waveform.duration, spec.get("max_audio_seconds"))
    Pipeline(config).animate(portrait, waveform, folder / VIDEO, progress, phones=phones)


def check_seconds_or_user_error(seconds: float, limit: float | None) -> None:
    """``UserError`` when text-to-speech (or an upload) gave longer speech than allowed."""
    if limit is not None and seconds > limit:
        raise UserError(f"the speech lasts {seconds:.1f} s; the limit is {limit:g} s. "
                        "Use a shorter text.")


def _progress_callback(shared):
    if shared is None:
        return None

    def report(done: int, total: int) -> None:
        shared[0], shared[1] = done, total

    return report


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: the parent never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
