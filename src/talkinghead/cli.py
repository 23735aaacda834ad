"""Command line: ``talkinghead generate | demo | eval | batch | serve | worker``, thin over Config."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from .config import (BACKENDS, DEVICES, EMOTIONS, GAZES, Config, FaceConfig, MotionConfig, NUM_POSE_STYLES,
                     VideoConfig)
from .errors import UserError
from .face.crop import MODES

EXIT_OK, EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 3, 130, 143


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code: 0 ok, 2 bad input or usage, 3 internal error,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Never lets a traceback reach the user."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2); argparse printed the message
        return exc.code if isinstance(exc.code, int) else EXIT_USER
    _quiet_native_logs()
    _log_to_stderr(logging.ERROR if args.quiet else logging.WARNING)
    with _sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command and turn every exception into a message and an exit code."""
    try:
        return args.func(args)
    except UserError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except _Terminated:
        print("talkinghead: terminated; no output written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("talkinghead: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("talkinghead: internal error: out of memory. Try a smaller photo or shorter audio, "
              "or close other programs.", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """Report an unexpected exception (a bug) in one paragraph; the traceback only on request."""
    if os.environ.get("TALKINGHEAD_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    print(f"talkinghead: internal error: {detail}\n"
          "This is a bug in talkinghead, not a problem with your files. Please report it with the "
          "command you ran (set TALKINGHEAD_DEBUG=1 to print the traceback). No output was "
          "written.", file=sys.stderr)
    return EXIT_INTERNAL


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``with`` block (the video writer) cleans up."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``_Terminated`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the moment (tests and servers swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


QUIET_LIBRARIES = ("PIL",)


def _log_to_stderr(level: int) -> None:
    """Route talkinghead's warnings (several faces, fallbacks) to stderr, once per process.
    Libraries' own log records (Pillow's complaint about a file it then refuses) are dropped:
    the error that reaches the user is ours, and says what to do."""
    for library in QUIET_LIBRARIES:
        if not logging.getLogger(library).handlers:
            logging.getLogger(library).addHandler(logging.NullHandler())
    logger = logging.getLogger("talkinghead")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("talkinghead: %(message)s"))
        logger.addHandler(handler)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talkinghead", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="animate a portrait with a speech recording")
    gen.add_argument("--image", required=True, help="portrait photo (any format Pillow reads)")
    gen.add_argument("--audio", default=None,
                     help="speech (any format ffmpeg reads, or a video); or give --text or --idle")
    gen.add_argument("--text", default=None,
                     help="words to speak instead of --audio (text or a .txt file): offline "
                          "text-to-speech (eSpeak NG) in --language, lips timed to its phones")
    gen.add_argument("-o", "--output", required=True,
                     help="output video: .mp4 (H.264), .mov, .mkv or .webm (VP9, Opus)")
    gen.add_argument("--idle", type=float, default=None, metavar="SECONDS",
                     help="animate without audio for SECONDS (breathing, blinks, small head motion)")
    gen.add_argument("--motion", default=None, metavar="FILE",
                     help="render the motion in FILE (.json/.npz from --export-motion) instead "
                          "of motion from the audio; the video lasts as long as the motion")
    _add_backend_options(gen)
    _add_options(gen)
    gen.set_defaults(func=_generate)
    demo = sub.add_parser("demo", help="animate a bundled portrait with synthesized speech")
    demo.add_argument("-o", "--output", default="demo.mp4")
    _add_options(demo)
    demo.set_defaults(func=_demo)
    ev = sub.add_parser("eval", help="measure the pipeline on real talking clips (needs [eval])")
    ev.add_argument("clips", nargs="?", default=None, help="folder of talking clips (mp4, mpg, ...)")
    ev.add_argument("--synthetic", action="store_true",
                    help="also score lip closure on synthetic speech with known phone timing")
    ev.add_argument("--json", default="eval.json", help="where to write the results")
    ev.add_argument("--max-seconds", type=float, default=None, help="use only the first N s")
    ev.add_argument("--work-dir", default=None, help="keep generated videos here")
    ev.add_argument("--live", action="store_true",
                    help="measure the live path (talkinghead stream: loudness-driven lips, "
                         "≤ 0.12 s of look-ahead) instead of generate")
    _add_backend_options(ev)
    _add_options(ev)
    ev.set_defaults(func=_eval)
    from .batch import add_batch_command
    from .stream import add_stream_command
    from .server.command import add_serve_command, add_worker_command

    add_batch_command(sub, _add_options)
    add_stream_command(sub, _add_options)
    add_serve_command(sub)
    add_worker_command(sub)
    return p


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default="embedded",
                   help="embedded: offline, CPU, no downloads; sadtalker: the official SadTalker "
                        "networks from --checkpoints (needs the [sadtalker] extra)")
    p.add_argument("--checkpoints", default=None, metavar="DIR",
                   help="folder holding SadTalker_V0.0.2_256/512.safetensors and mapping_*.pth.tar")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the sadtalker backend's networks run (auto: a CUDA GPU if torch "
                        "sees one, else the CPU)")


def _add_options(p: argparse.ArgumentParser) -> None:
    d_face, d_motion, d_video = FaceConfig(), MotionConfig(), VideoConfig()
    p.add_argument("--preprocess", choices=MODES, default=d_face.preprocess,
                   help="crop: face square; extcrop: larger square; resize: whole photo squashed "
                        "to a square; full/extfull: whole photo at its own resolution")
    p.add_argument("--size", type=_side, default=d_face.size,
                   help="output side for square modes (default 512, or the face crop's own size)")
    p.add_argument("--face-index", type=_index, default=d_face.face_index,
                   help="which face to animate when there are several (0 = largest)")
    p.add_argument("--fps", type=float, default=d_video.fps)
    p.add_argument("--crf", type=int, default=d_video.crf,
                   help=f"video quality 0..51 (default {d_video.crf}): lower is better and larger, "
                        "0 lossless")
    p.add_argument("--still", action="store_true", help="keep the photo's head pose")
    p.add_argument("--expression-scale", type=float, default=d_motion.expression_scale)
    p.add_argument("--head-motion-scale", type=float, default=d_motion.head_motion_scale)
    p.add_argument("--pose-style", type=int, default=d_motion.pose_style,
                   help=f"head-motion style 0..{NUM_POSE_STYLES - 1}")
    p.add_argument("--seed", type=int, default=0, help="same inputs and seed → same video")
    p.add_argument("--no-blink", action="store_true", help="no generated blinks")
    p.add_argument("--gaze", choices=GAZES, default=d_motion.gaze,
                   help="natural: the eyes hold the viewer's eye as the head moves, with "
                        "saccades and glances aside or down; camera: only hold it; fixed: as in the photo")
    for axis in ("yaw", "pitch", "roll"):
        p.add_argument(f"--{axis}", type=float, nargs="+", default=(), metavar="DEG",
                       help=f"free view: {axis} in degrees, several values are interpolated "
                            "evenly over the video (added to the head motion; alone with --still)")
    p.add_argument("--emotion", choices=EMOTIONS, default=d_motion.emotion,
                   help="emotion layered on speech")
    p.add_argument("--emotion-strength", type=float, default=d_motion.emotion_strength,
                   help="0..2 (default 1)")
    p.add_argument("--language", type=str.lower, default=d_motion.language, metavar="CODE",
                   help="the speech's language, ISO 639 (en, zh, ja, de, fr...; default en): "
                        "for other languages than English the lips also follow loudness")
    p.add_argument("--ref-pose", default=None, metavar="VIDEO",
                   help="copy head motion from VIDEO (relative to its first frame, looped)")
    p.add_argument("--ref-blink", default=None, metavar="VIDEO",
                   help="copy the eyelids (only) from VIDEO, looped")
    p.add_argument("--export-motion", default=None, metavar="FILE",
                   help="also write the per-frame motion to FILE (.json or .npz)")
    p.add_argument("--transcript", default=None,
                   help="the words spoken (text or a .txt file): better timing by forced alignment")
    p.add_argument("--quiet", action="store_true", help="no progress bar or warnings")


def _side(text: str) -> int:
    """argparse type of ``--size``: an even-able pixel count within 16..4096."""
    value = int(text)
    if not 16 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be within 16..4096 pixels, got {value}")
    return value


def _index(text: str) -> int:
    """argparse type of ``--face-index``: 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (the largest face) or more, got {value}")
    return value


def config_from_args(args: argparse.Namespace) -> Config:
    """Config for parsed command-line options; ``UserError`` for a value out of range."""
    try:
        return _config(args)
    except ValueError as exc:  # the configs' own range checks
        raise UserError(f"{exc}. See talkinghead generate --help.") from exc


def _config(args: argparse.Namespace) -> Config:
    return Config(
        face=FaceConfig(preprocess=args.preprocess, size=args.size, face_index=args.face_index),
        motion=MotionConfig(expression_scale=args.expression_scale,
                            head_motion_scale=args.head_motion_scale, pose_style=args.pose_style,
                            still=args.still, blink=not args.no_blink, yaw=tuple(args.yaw),
                            pitch=tuple(args.pitch), roll=tuple(args.roll), emotion=args.emotion,
                            emotion_strength=args.emotion_strength, ref_pose=args.ref_pose,
                            ref_blink=args.ref_blink, language=args.language, gaze=args.gaze),
        video=VideoConfig(fps=args.fps, crf=args.crf),
        seed=args.seed,
        transcript=_transcript(args.transcript),
        backend=getattr(args, "backend", "embedded"),
        checkpoints=getattr(args, "checkpoints", None),
        device=getattr(args, "device", "auto"),
    )


def _transcript(value: str | None) -> str | None:
    """The text of a text-or-.txt-file option; ``UserError`` for a .txt path that is not a file
    (rather than speaking or aligning its name)."""
    if _text_file(value):
        return Path(value).read_text(encoding="utf-8", errors="replace")
    if value and value.strip().lower().endswith(".txt") and not any(c.isspace() for c in value.strip()):
        raise UserError(f"text file not found: {value}. Give the words themselves, or the path "
                        "of a .txt file")
    return value


def _text_file(value: str | None) -> str | None:
    """``value`` when it names a file, else None."""
    return value if value and len(value) < 4096 and Path(value).is_file() else None


def _generate(args: argparse.Namespace) -> int:
    from .media import check_output_path, load_image
    from .motion.io import load_motion
    from .pipeline import Pipeline

    start = time.perf_counter()
    pipeline = Pipeline(config_from_args(args))
    motion = load_motion(args.motion) if args.motion else None
    inputs = [p for p in (args.image, args.audio, args.motion, _text_file(args.text)) if p]
    out = check_output_path(args.output, inputs)
    speech, phones = _speech(args, motion)
    if pipeline.config.backend == "sadtalker":
        if args.motion or args.export_motion:
            raise UserError("--motion and --export-motion work with --backend embedded only")
        progress = None if args.quiet else ProgressBar("rendering")
        _report(args, pipeline.animate(load_image(args.image), speech, out, progress), start)
        return EXIT_OK
    result = _animate(args, pipeline, load_image(args.image), speech, out, motion, phones)
    _report(args, result, start)
    return EXIT_OK


def _speech(args: argparse.Namespace, motion):
    """The waveform to animate and mux, and known phones: the --audio file, --text spoken, or
    silence for --idle SECONDS or for the length of a --motion file."""
    import numpy as np

    from .media import load_audio
    from .types import Phone, Waveform

    if sum(x is not None for x in (args.audio, args.text, args.idle)) > 1:
        raise UserError("use one of --audio, --text and --idle")
    if args.audio:
        return load_audio(args.audio), None
    if args.text is not None:
        return _spoken(args)
    if args.idle is not None and not 0 < args.idle <= 3600:
        raise UserError(f"--idle takes 0 < SECONDS <= 3600, got {args.idle:g}")
    seconds = args.idle if args.idle is not None else (motion.num_frames / motion.fps if motion else 0)
    if seconds <= 0:
        raise UserError("give --audio (speech to animate), --text, --idle SECONDS or --motion FILE")
    rate = 16000
    return Waveform(np.zeros(int(round(seconds * rate)), np.float32), rate), \
        (Phone("SIL", 0.0, seconds),)


def _spoken(args: argparse.Namespace):
    """(waveform, phones) of --text spoken by eSpeak NG in --language."""
    from .audio.tts import synthesize, voice_for

    text = _transcript(args.text)
    if not text.strip():
        raise UserError("--text is empty: give the words to speak")
    if args.transcript:
        raise UserError("--transcript is for recorded speech; --text already times the lips exactly")
    speech = synthesize(text, voice_for(args.language))
    return speech.waveform, speech.phones


def _animate(args: argparse.Namespace, pipeline, portrait, speech, out, motion=None, phones=None):
    """Render and encode; with --export-motion, the motion is planned whole first and its file
    written before rendering."""
    from .pipeline import Timings

    progress = None if args.quiet else ProgressBar("rendering")
    timings = Timings()
    if not args.export_motion:
        return pipeline.animate(portrait, speech, out, progress, motion, phones, timings)
    from .motion.io import check_motion_path, save_motion

    check_motion_path(args.export_motion)
    prepared = pipeline.prepare(portrait, speech, timings, motion, phones)
    save_motion(prepared.motion, args.export_motion)
    return pipeline.write(prepared, speech, out, timings, progress)


def _demo(args: argparse.Namespace) -> int:
    from .audio.tts import demo_sentence, synthesize
    from .media import load_image
    from .pipeline import Pipeline
    from .samples import demo_portrait_path

    from .media import check_output_path

    start = time.perf_counter()
    speech = synthesize(demo_sentence())
    portrait = load_image(demo_portrait_path())
    result = _animate(args, Pipeline(config_from_args(args)), portrait, speech.waveform,
                      check_output_path(args.output), phones=speech.phones)
    _report(args, result, start)
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    try:
        from .evaluation.runner import main_eval
    except ImportError as exc:
        raise UserError(f"evaluation needs the eval extra: pip install 'talkinghead[eval]' ({exc})")
    from .evaluation.synthetic import main_synthetic
    from .media import load_image
    from .pipeline import Pipeline
    from .stream import stream_to_file

    if args.clips is None and not args.synthetic:
        raise UserError("pass a folder of talking clips, --synthetic, or both")
    if (args.synthetic or args.live) and args.backend != "embedded":
        raise UserError("--synthetic and --live measure the embedded backend; with --backend "
                        "sadtalker, evaluate clips only")
    pipeline = Pipeline(config_from_args(args))

    def generate(image: Path, audio: Path, out: Path) -> None:
        if args.live:
            stream_to_file(load_image(image), audio, out, pipeline.config)
        else:
            pipeline.run(image, audio, out)

    out_json = Path(args.json)
    if args.clips is not None:
        main_eval(Path(args.clips), out_json, generate, args.max_seconds, args.quiet,
                  work_dir=Path(args.work_dir) if args.work_dir else None)
    if args.synthetic:
        main_synthetic(pipeline.config, out_json.with_name(out_json.stem + "_synthetic.json"),
                       args.quiet)
    return EXIT_OK


def _report(args: argparse.Namespace, result, start: float) -> None:
    """One line on stderr: the video written, and the wall time since ``start``
    (``time.perf_counter``) — not the sum of the stage timings, whose threads overlap."""
    if not args.quiet:
        wall = time.perf_counter() - start
        seconds = result.num_frames / result.fps
        print(f"wrote {result.path} ({result.width}x{result.height}, {result.num_frames} frames, "
              f"{seconds:.1f} s) in {wall:.1f} s ({wall / max(seconds, 1e-9):.2f}× real time)",
              file=sys.stderr)


class ProgressBar:
    """A one-line progress bar on stderr: ``label [#####     ] 50% 12/24``."""

    def __init__(self, label: str, width: int = 30):
        self.label, self.width, self.start = label, width, time.perf_counter()
        self._last = -1.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = int(self.width * done / max(total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{' ' * (self.width - filled)}] "
                         f"{100 * done // max(total, 1):3d}% {done}/{total} {now - self.start:.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _quiet_native_logs() -> None:
    """MediaPipe and TensorFlow Lite print to stderr from C++; keep only errors."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", message=".*SymbolDatabase.GetPrototype.*")
