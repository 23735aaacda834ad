"""Evaluate a generator on real talking clips: generated (test), real (ceiling), still (floor).

For each clip, frame 0 becomes the portrait and the clip's own speech the audio; the caller's
``generate`` makes a video from them, and the same dlib ``Landmarker`` measures it, the real
clip and the portrait repeated for the clip's length. All series are resampled onto one
timeline at ``fps`` (frame k at k / fps seconds from the first audio sample).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import NoFaceError, TalkingHeadError, UserError
from ..types import Phone
from . import metrics as M
from .cpbd import video_cpbd
from ._media import Video, read_audio, read_image, read_video, write_png, write_video, write_wav
from .landmarks import Landmarker, Track

Generate = Callable[[Path, Path, Path], None]
PhoneSource = Callable[[Path], tuple[Phone, ...]]
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm")
SAMPLE_RATE = 16000
KINDS = ("generated", "real", "still")


@dataclass(frozen=True)
class Row:
    """Scores of one video. ``kind``: generated | real (ceiling) | still (floor); clip "median" for medians.

    Units: seconds; sync lags in frames at the report's fps (positive: the mouth is late);
    ``head_std`` degrees (yaw, pitch, roll); ``head_ratio`` = |std| / |real std|; ``jitter`` in
    inter-ocular distances per frame²; ``face_found`` share of frames with landmarks;
    ``gaze_std``: std of the iris's place between the eye corners (share of the eye's width);
    ``brow_std``: std of the brows' height above the eye corners (inter-ocular distances);
    ``cpbd``: the whole frames' CPBD sharpness (``cpbd.video_cpbd``), higher is sharper.
    """

    clip: str
    kind: str
    seconds: float
    frames: int
    face_found: float
    sync_r0: float
    sync_best_r: float
    sync_lag: float
    audio_r0: float
    audio_best_r: float
    audio_lag: float
    audio_null_r0: float
    audio_null_best_r: float
    silence_ratio: float
    bilabial_closed: float
    open_vowels: float
    identity_mean: float
    identity_max: float
    sharpness: float
    cpbd: float
    blinks_per_min: float
    head_std: tuple[float, float, float]
    head_ratio: float
    beat_alignment: float
    jitter: float
    gaze_std: float
    brow_std: float
    generate_seconds: float
    measure_seconds: float


@dataclass(frozen=True)
class Report:
    """All rows (per clip: generated, real, still) and one median row per kind; ``fps`` of the timeline."""

    rows: tuple[Row, ...]
    medians: tuple[Row, ...]
    fps: float
    max_seconds: float | None

    def to_dict(self) -> dict:
        """JSON-ready dict; NaN becomes None."""
        return _json_ready({"fps": self.fps, "max_seconds": self.max_seconds,
                            "rows": [asdict(r) for r in self.rows],
                            "medians": [asdict(r) for r in self.medians]})


@dataclass(frozen=True)
class _Series:
    """One video on the common timeline. (G, 68, 2) points, (G,) mouth and EAR, (G, 3) pose."""

    points: np.ndarray
    mouth: np.ndarray
    ear: np.ndarray
    pose: np.ndarray


@dataclass(frozen=True)
class _Clip:
    """What every video of one clip is measured against: the timeline, energy, portrait, reference."""

    name: str
    grid: np.ndarray
    energy: np.ndarray
    fps: float
    portrait: np.ndarray
    portrait_track: Track
    phones: tuple[Phone, ...] | None


# ---------------------------------------------------------------- the still baseline

def still_video(image_path: Path, audio_path: Path, out_path: Path, fps: float = 25.0) -> None:
    """A ``Generate`` that writes the portrait, unmoving, for the audio's length (the floor baseline)."""
    image = read_image(Path(image_path))
    seconds = len(read_audio(Path(audio_path), SAMPLE_RATE)) / SAMPLE_RATE
    count = max(1, int(math.ceil(seconds * fps)))
    write_video(Path(out_path), np.repeat(image[None], count, axis=0), fps)


# ---------------------------------------------------------------- series and rows

def _series(track: Track, times: np.ndarray, grid: np.ndarray) -> _Series:
    """Resample a track's points from its frame ``times`` onto ``grid``; derive m, EAR, pose."""
    points = M.resample(track.points, times, grid)
    return _Series(points, M.mouth_opening(points), M.eye_aspect_ratio(points).mean(axis=1),
                   M.head_pose(points, track.image_size))


def _row(kind: str, clip: _Clip, video: _Series, real: _Series, track: Track,
         sharpness: tuple[float, float], gaze: float, timing: tuple[float, float]) -> Row:
    """All metrics of one video of ``clip`` against the real video's series ``real``;
    ``sharpness``: (face sharpness / the portrait's, CPBD)."""
    fps = clip.fps
    sync = M.sync_with_reference(video.mouth, real.mouth)
    audio = M.sync_with_audio(video.mouth, clip.energy)
    bilabial = M.bilabial_scores(video.mouth, clip.phones, fps) if clip.phones else (math.nan, math.nan)
    ident = M.identity_distance(track.descriptors, clip.portrait_track.descriptors[0])
    return Row(
        clip=clip.name, kind=kind, seconds=len(clip.grid) / fps, frames=len(clip.grid),
        face_found=float(np.isfinite(video.mouth).mean()),
        sync_r0=sync[0], sync_best_r=sync[1], sync_lag=float(sync[2]),
        audio_r0=audio.r0, audio_best_r=audio.best_r, audio_lag=float(audio.best_lag),
        audio_null_r0=audio.null_r0, audio_null_best_r=audio.null_best_r,
        silence_ratio=M.silence_rest_ratio(video.mouth, clip.energy, fps),
        bilabial_closed=bilabial[0], open_vowels=bilabial[1],
        identity_mean=ident[0], identity_max=ident[1], sharpness=sharpness[0], cpbd=sharpness[1],
        blinks_per_min=M.blinks_per_minute(video.ear, fps),
        head_std=tuple(float(v) for v in M.head_motion_std(video.pose)),
        head_ratio=M.head_motion_ratio(video.pose, real.pose)[1],
        beat_alignment=M.beat_alignment(video.pose, clip.energy, fps),
        jitter=M.landmark_jitter(track.points),  # at the video's own frame rate: resampling smooths
        gaze_std=gaze,
        brow_std=M.brow_spread(M.brow_heights(track.points), fps),
        generate_seconds=timing[0], measure_seconds=timing[1])


def _measure_video(kind: str, clip: _Clip, video: Video, real: _Series | None,
                   landmarker: Landmarker, generate_seconds: float) -> tuple[Row, _Series]:
    """Track a decoded video, build its series and its row (``real`` None: it is the real one)."""
    start = time.perf_counter()
    track = landmarker.track(video.frames)
    series = _series(track, video.times, clip.grid)
    sharp = (M.sharpness_ratio(video.frames, track.points, clip.portrait, clip.portrait_track.points[0]),
             video_cpbd(video.frames))
    gaze = M.gaze_spread(M.iris_offsets(video.frames, track.points), video.fps)
    row = _row(kind, clip, series, real or series, track, sharp, gaze,
               (generate_seconds, time.perf_counter() - start))
    return row, series


def _measure_still(clip: _Clip, real: _Series) -> Row:
    """The floor: the portrait repeated for the clip's length, measured without encoding."""
    start = time.perf_counter()
    track = clip.portrait_track.repeat(len(clip.grid))
    series = _series(track, clip.grid, clip.grid)
    sharp = (M.sharpness_ratio(clip.portrait[None], clip.portrait_track.points, clip.portrait,
                               clip.portrait_track.points[0]),
             video_cpbd(clip.portrait[None]))
    return _row("still", clip, series, real, track, sharp, 0.0,
                (0.0, time.perf_counter() - start))


# ---------------------------------------------------------------- one clip

def _timeline(video: Video, samples: np.ndarray, fps: float) -> np.ndarray:
    """(G,) seconds k / fps covering both the audio and the real video."""
    video_end = float(video.times[-1]) + 1.0 / video.fps
    seconds = min(len(samples) / SAMPLE_RATE, video_end) if len(samples) else video_end
    return np.arange(max(1, int(math.floor(seconds * fps + 1e-6)))) / fps


def _prepare(clip_path: Path, clip_dir: Path, landmarker: Landmarker, fps: float,
             max_seconds: float | None) -> tuple[_Clip, Video, Path, Path]:
    """Decode a clip, write its portrait (and trimmed audio), track the portrait."""
    video = read_video(clip_path, max_seconds)
    samples = read_audio(clip_path, SAMPLE_RATE, max_seconds)
    portrait_path = clip_dir / "portrait.png"
    write_png(portrait_path, video.frames[0])
    audio_path = clip_path
    if max_seconds is not None:
        audio_path = clip_dir / "audio.wav"
        write_wav(audio_path, samples, SAMPLE_RATE)
    portrait_track = landmarker.track([video.frames[0]])
    if not portrait_track.found()[0]:
        raise NoFaceError(f"No face in frame 0 of {clip_path}; use clips that start on a face.")
    grid = _timeline(video, samples, fps)
    energy = M.audio_energy(samples, SAMPLE_RATE, grid, 1.0 / fps)
    clip = _Clip(clip_path.stem, grid, energy, fps, video.frames[0], portrait_track, None)
    return clip, video, portrait_path, audio_path


def evaluate_clip(clip_path: Path, generate: Generate, work_dir: Path, landmarker: Landmarker,
                  fps: float = 25.0, max_seconds: float | None = None,
                  phones: PhoneSource | None = None) -> tuple[Row, Row, Row]:
    """(generated, real, still) rows of one clip; files go to ``work_dir``/<clip stem>/."""
    clip_path = Path(clip_path)
    clip_dir = Path(work_dir) / clip_path.stem
    clip, real_video, portrait_path, audio_path = _prepare(clip_path, clip_dir, landmarker, fps, max_seconds)
    if phones is not None:
        clip = replace(clip, phones=tuple(phones(audio_path)))
    real_row, real = _measure_video("real", clip, real_video, None, landmarker, math.nan)
    del real_video
    out_path = clip_dir / "generated.mp4"
    start = time.perf_counter()
    generate(portrait_path, audio_path, out_path)
    generate_seconds = time.perf_counter() - start
    if not out_path.is_file():
        raise TalkingHeadError(f"The generator wrote no video at {out_path}.")
    gen_video = read_video(out_path, max_seconds)
    gen_row, _ = _measure_video("generated", clip, gen_video, real, landmarker, generate_seconds)
    return gen_row, real_row, _measure_still(clip, real)


# ---------------------------------------------------------------- many clips

def find_clips(clips_dir: Path) -> list[Path]:
    """Video files directly inside ``clips_dir``, sorted by name."""
    clips_dir = Path(clips_dir)
    if not clips_dir.is_dir():
        raise UserError(f"{clips_dir} is not a folder; pass a folder of talking-head clips.")
    clips = sorted(p for p in clips_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not clips:
        raise UserError(f"No video clips ({', '.join(VIDEO_SUFFIXES)}) in {clips_dir}.")
    return clips


def median_rows(rows: list[Row] | tuple[Row, ...]) -> tuple[Row, ...]:
    """One row per kind (in ``KINDS`` order) holding the NaN-ignoring median of every number."""
    out = []
    for kind in KINDS:
        group = [r for r in rows if r.kind == kind]
        if group:
            out.append(_median_row(kind, group))
    return tuple(out)


def _median_row(kind: str, group: list[Row]) -> Row:
    """Field-wise median of rows of one kind."""
    values: dict = {"clip": "median", "kind": kind}
    for f in fields(Row):
        if f.name in values:
            continue
        column = np.array([getattr(r, f.name) for r in group], dtype=np.float64)
        med = _nanmedian(column)
        values[f.name] = tuple(float(v) for v in med) if column.ndim == 2 else float(med)
    values["frames"] = int(values["frames"]) if math.isfinite(values["frames"]) else 0
    return Row(**values)


def _nanmedian(column: np.ndarray) -> np.ndarray | float:
    """Median along axis 0 ignoring NaN; NaN where a column is all NaN (no warning)."""
    finite = np.isfinite(column)
    if column.ndim == 1:
        return float(np.median(column[finite])) if finite.any() else math.nan
    return np.array([_nanmedian(column[:, k]) for k in range(column.shape[1])])


def evaluate_clips(clips_dir: Path, generate: Generate, out_json: Path, work_dir: Path,
                   max_seconds: float | None = None, fps: float = 25.0,
                   phones: PhoneSource | None = None,
                   progress: Callable[[str], None] | None = None) -> Report:
    """Evaluate ``generate`` on every clip in ``clips_dir``; write the report to ``out_json``.

    ``generate(image_path, audio_path, out_path)`` must write a video at ``out_path``; the
    audio path is the clip itself (or a trimmed WAV when ``max_seconds`` is set). ``phones``,
    if given, maps that audio path to timed phones for the bilabial scores.
    """
    landmarker = Landmarker()
    rows: list[Row] = []
    for clip_path in find_clips(Path(clips_dir)):
        start = time.perf_counter()
        rows.extend(evaluate_clip(clip_path, generate, Path(work_dir), landmarker, fps, max_seconds, phones))
        if progress is not None:
            progress(f"{clip_path.name}: {time.perf_counter() - start:.1f} s")
    report = Report(tuple(rows), median_rows(rows), fps, max_seconds)
    write_json(Path(out_json), report.to_dict())
    return report


# ---------------------------------------------------------------- output

def _json_ready(value):
    """``value`` with NaN / inf floats replaced by None and tuples by lists, recursively."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


COLUMNS = (  # header, width, value
    ("clip", 20, lambda r: r.clip[:20]),
    ("kind", 9, lambda r: r.kind),
    ("sync r0", 7, lambda r: _num(r.sync_r0, 2)),
    ("best r", 6, lambda r: _num(r.sync_best_r, 2)),
    ("lag", 4, lambda r: _num(r.sync_lag, 0)),
    ("aud r0", 6, lambda r: _num(r.audio_r0, 2)),
    ("null", 5, lambda r: _num(r.audio_null_r0, 2)),
    ("aud lag", 7, lambda r: _num(r.audio_lag, 0)),
    ("silence", 7, lambda r: _num(r.silence_ratio, 2)),
    ("id mean", 7, lambda r: _num(r.identity_mean, 2)),
    ("id max", 6, lambda r: _num(r.identity_max, 2)),
    ("sharp", 5, lambda r: _num(r.sharpness, 2)),
    ("cpbd", 4, lambda r: _num(r.cpbd, 2)),
    ("blink/min", 9, lambda r: _num(r.blinks_per_min, 1)),
    ("head std y/p/r", 14, lambda r: "/".join(_num(v, 1) for v in r.head_std)),
    ("head×", 5, lambda r: _num(r.head_ratio, 2)),
    ("beat", 4, lambda r: _num(r.beat_alignment, 2)),
    ("jitter", 6, lambda r: _num(r.jitter, 3)),
    ("gaze", 5, lambda r: _num(r.gaze_std, 3)),
    ("brow", 5, lambda r: _num(r.brow_std, 3)),
    ("face", 4, lambda r: _num(r.face_found, 2)),
    ("gen s", 6, lambda r: _num(r.generate_seconds, 1)),
    ("meas s", 6, lambda r: _num(r.measure_seconds, 1)),
)


def _num(value: float, digits: int) -> str:
    """A number with ``digits`` decimals, or "-" for NaN."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ordered(report: Report) -> list[Row]:
    """Rows grouped by kind (generated, real, still), each group followed by its median."""
    out: list[Row] = []
    for kind in KINDS:
        out.extend(r for r in report.rows if r.kind == kind)
        out.extend(r for r in report.medians if r.kind == kind)
    return out


def format_table(report: Report) -> str:
    """Fixed-width text table: one line per video, medians after each kind; "-" for NaN."""
    lines = [" ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (h, w, _) in enumerate(COLUMNS))]
    lines.append("-" * len(lines[0]))
    for row in _ordered(report):
        lines.append(" ".join(f(row).rjust(w) if i > 1 else f(row).ljust(w)
                              for i, (_, w, f) in enumerate(COLUMNS)))
    return "\n".join(lines)


def format_markdown(report: Report) -> str:
    """The same table in Markdown; median rows in bold."""
    lines = ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|"]
    for row in _ordered(report):
        cells = [f(row) for _, _, f in COLUMNS]
        if row.clip == "median":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_eval(clips_dir: Path, out_json: Path, generate: Generate, max_seconds: float | None = None,
              quiet: bool = False, work_dir: Path | None = None) -> Report:
    """CLI entry: evaluate, write ``out_json``, print the table to stdout (progress to stderr).

    ``work_dir`` (portraits, audio, generated videos) defaults to <out_json stem>_work beside it.
    """
    out_json = Path(out_json)
    work = Path(work_dir) if work_dir is not None else out_json.with_name(out_json.stem + "_work")
    progress = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    report = evaluate_clips(Path(clips_dir), generate, out_json, work, max_seconds, progress=progress)
    print(format_table(report))
    return report
