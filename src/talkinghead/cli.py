"""Command line: ``talkinghead generate | demo | eval``. Thin: flags map onto Config."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from .config import Config, FaceConfig, MotionConfig, NUM_POSE_STYLES, VideoConfig
from .errors import TalkingHeadError, UserError
from .face.crop import MODES

EXIT_OK, EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 2, 3, 130


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 3 internal error, 130 Ctrl-C)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _quiet_native_logs()
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="talkinghead: %(message)s")
    try:
        return args.func(args)
    except UserError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except ValueError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("talkinghead: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TalkingHeadError as exc:
        print(f"talkinghead: internal error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talkinghead", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="animate a portrait with a speech recording")
    gen.add_argument("--image", required=True, help="portrait photo (any format Pillow reads)")
    gen.add_argument("--audio", required=True, help="speech (any format ffmpeg reads, or a video)")
    gen.add_argument("-o", "--output", required=True, help="output .mp4")
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
    _add_options(ev)
    ev.set_defaults(func=_eval)
    return p


def _add_options(p: argparse.ArgumentParser) -> None:
    d_face, d_motion, d_video = FaceConfig(), MotionConfig(), VideoConfig()
    p.add_argument("--preprocess", choices=MODES, default=d_face.preprocess,
                   help="crop: face square; extcrop: larger square; resize: whole photo squashed "
                        "to a square; full/extfull: whole photo at its own resolution")
    p.add_argument("--size", type=int, default=d_face.size,
                   help="output side for square modes (default 512, or the face crop's own size)")
    p.add_argument("--face-index", type=int, default=d_face.face_index,
                   help="which face to animate when there are several (0 = largest)")
    p.add_argument("--fps", type=float, default=d_video.fps)
    p.add_argument("--still", action="store_true", help="keep the photo's head pose")
    p.add_argument("--expression-scale", type=float, default=d_motion.expression_scale)
    p.add_argument("--head-motion-scale", type=float, default=d_motion.head_motion_scale)
    p.add_argument("--pose-style", type=int, default=d_motion.pose_style,
                   help=f"head-motion style 0..{NUM_POSE_STYLES - 1}")
    p.add_argument("--seed", type=int, default=0, help="same inputs and seed → same video")
    p.add_argument("--no-blink", action="store_true", help="no generated blinks")
    p.add_argument("--transcript", default=None,
                   help="the words spoken (text or a .txt file): better timing by forced alignment")
    p.add_argument("--quiet", action="store_true", help="no progress bar or warnings")


def config_from_args(args: argparse.Namespace) -> Config:
    """Config for parsed command-line options."""
    return Config(
        face=FaceConfig(preprocess=args.preprocess, size=args.size, face_index=args.face_index),
        motion=MotionConfig(expression_scale=args.expression_scale,
                            head_motion_scale=args.head_motion_scale, pose_style=args.pose_style,
                            still=args.still, blink=not args.no_blink),
        video=VideoConfig(fps=args.fps),
        seed=args.seed,
        transcript=_transcript(args.transcript),
    )


def _transcript(value: str | None) -> str | None:
    if value and len(value) < 4096 and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8", errors="replace")
    return value


def _generate(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline

    progress = None if args.quiet else ProgressBar("rendering")
    result = Pipeline(config_from_args(args)).run(args.image, args.audio, args.output, progress)
    _report(args, result)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from .audio.tts import demo_sentence, synthesize
    from .media import load_image
    from .pipeline import Pipeline
    from .samples import demo_portrait_path

    speech = synthesize(demo_sentence())
    portrait = load_image(demo_portrait_path())
    progress = None if args.quiet else ProgressBar("rendering")
    result = Pipeline(config_from_args(args)).animate(portrait, speech.waveform, args.output,
                                                      progress, phones=speech.phones)
    _report(args, result)
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    try:
        from .evaluation.runner import main_eval
    except ImportError as exc:
        raise UserError(f"evaluation needs the eval extra: pip install 'talkinghead[eval]' ({exc})")
    from .evaluation.synthetic import main_synthetic
    from .pipeline import Pipeline

    if args.clips is None and not args.synthetic:
        raise UserError("pass a folder of talking clips, --synthetic, or both")
    pipeline = Pipeline(config_from_args(args))

    def generate(image: Path, audio: Path, out: Path) -> None:
        pipeline.run(image, audio, out)

    out_json = Path(args.json)
    if args.clips is not None:
        main_eval(Path(args.clips), out_json, generate, args.max_seconds, args.quiet,
                  work_dir=Path(args.work_dir) if args.work_dir else None)
    if args.synthetic:
        main_synthetic(pipeline.config, out_json.with_name(out_json.stem + "_synthetic.json"),
                       args.quiet)
    return EXIT_OK


def _report(args: argparse.Namespace, result) -> None:
    if not args.quiet:
        t = result.timings
        seconds = result.num_frames / result.fps
        print(f"wrote {result.path} ({result.width}x{result.height}, {result.num_frames} frames, "
              f"{seconds:.1f} s) in {t.total():.1f} s ({t.total() / max(seconds, 1e-9):.2f}× real time)",
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
