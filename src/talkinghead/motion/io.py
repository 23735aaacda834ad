"""Motion files: save a MotionTrack as JSON or npz, load and validate one.

Schema ``talkinghead.motion`` version 1 (both formats hold the same fields):

- ``schema``: ``"talkinghead.motion"``; ``version``: 1.
- ``fps``: frames per second (> 0); ``num_frames``: T (>= 1).
- ``channels``: the expression channel names, in column order.
- ``expression``: per-frame weights (0 = neutral, ~1 = full). JSON: an object mapping each
  channel name to a list of T numbers. npz: a (T, C) float32 array whose columns follow
  ``channels``. ``gaze_x`` turns both eyes in the head: 1 is 20° towards the image's left (as
  positive yaw), -1 towards its right; ``gaze_y`` 1 is 20° down (the upper lids follow; up is
  not drawn); 0 leaves them as in the photo (``motion/gaze.py``).
- ``pose``: head pose per frame relative to the portrait's own pose: ``pitch``, ``yaw``,
  ``roll`` in radians (rotation R = Rz(roll)·Ry(yaw)·Rx(pitch) in image axes: x right, y down,
  z away from the camera; positive pitch tips the chin down, positive yaw turns the nose
  towards the image's left, positive roll turns the face clockwise on screen), then ``x``, ``y``
  translation in inter-ocular distances (IOD, image axes) and ``z`` (positive = farther away:
  the head is scaled by exp(-0.1·z)). JSON: an object of six lists; npz: a (T, 6) float32
  array in that order.
- ``blink``: eyelid closure per frame in [0, 1] (1 = closed), added to the blink channels.
- ``meta``: free-form JSON object (seed, pose_style, emotion, source...); npz stores it as a
  JSON string.

Unknown expression channels are an error when rendering; channels the file lacks stay neutral.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import MotionFileError
from ..types import MotionTrack

SCHEMA = "talkinghead.motion"
VERSION = 1
POSE_FIELDS = ("pitch", "yaw", "roll", "x", "y", "z")
MAX_ABS_ANGLE = math.pi          # radians
MAX_ABS_SHIFT = 10.0             # IOD
MAX_ABS_WEIGHT = 10.0


def save_motion(track: MotionTrack, path: str | Path) -> Path:
    """Write ``track`` to ``path`` (.json or .npz, chosen by the suffix); returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".json":
        path.write_text(json.dumps(_to_json(track), separators=(",", ":")), encoding="utf-8")
    else:
        with path.open("wb") as f:
            np.savez_compressed(f, schema=np.array(SCHEMA), version=np.array(VERSION),
                                fps=np.array(track.fps, np.float64),
                                channels=np.array(track.channels, dtype=str),
                                expression=track.expression.astype(np.float32),
                                pose=track.pose.astype(np.float32),
                                blink=track.blink.astype(np.float32),
                                meta=np.array(json.dumps(_jsonable(track.meta))))
    return path


def load_motion(path: str | Path) -> MotionTrack:
    """Read and validate a motion file; raises ``MotionFileError`` saying what is wrong."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise MotionFileError(f"motion file {path} does not exist")
    try:
        fields = _read_json(path) if suffix == ".json" else _read_npz(path)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise MotionFileError(f"cannot read motion file {path}: {exc}") from exc
    return _validated(fields, path)


def conform_channels(track: MotionTrack, channels: tuple[str, ...]) -> MotionTrack:
    """The same track with its expression columns reordered to ``channels`` (missing ones 0).

    Raises ``MotionFileError`` for channel names the face model does not have.
    """
    unknown = [c for c in track.channels if c not in channels]
    if unknown:
        raise MotionFileError(f"motion has unknown expression channels {unknown}; "
                              f"known channels: {', '.join(channels)}")
    if tuple(track.channels) == tuple(channels):
        return track
    out = np.zeros((track.num_frames, len(channels)), dtype=np.float32)
    for k, name in enumerate(track.channels):
        out[:, channels.index(name)] = track.expression[:, k]
    return MotionTrack(track.fps, tuple(channels), out, track.pose, track.blink, dict(track.meta))


def retime(track: MotionTrack, fps: float) -> MotionTrack:
    """The track resampled to ``fps`` by linear interpolation (same duration); blink peaks kept."""
    if abs(track.fps - fps) < 1e-6:
        return track
    n = max(1, int(round(track.num_frames * fps / track.fps)))
    src = np.arange(track.num_frames) / track.fps
    dst = np.arange(n) / fps

    def interp(a: np.ndarray) -> np.ndarray:
        cols = a.reshape(track.num_frames, -1)
        res = np.stack([np.interp(dst, src, cols[:, k]) for k in range(cols.shape[1])], axis=1)
        return res.reshape((n,) + a.shape[1:]).astype(np.float32)

    blink = interp(track.blink)
    peaks = np.clip(np.round(src[track.blink >= 0.999] * fps).astype(int), 0, n - 1)
    blink[peaks] = 1.0
    return MotionTrack(fps, track.channels, interp(track.expression), interp(track.pose), blink,
                       dict(track.meta))


def check_motion_path(path: str | Path) -> Path:
    """``path`` if it names a .json or .npz file in an existing folder; ``MotionFileError`` if not."""
    path = Path(path)
    _suffix(path)
    if not path.parent.is_dir():
        raise MotionFileError(f"cannot write motion file {path}: folder {path.parent} does not exist")
    return path


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise MotionFileError(f"motion file {path} must end in .json or .npz")
    return suffix


def _to_json(track: MotionTrack) -> dict:
    def col(a: np.ndarray) -> list[float]:
        return [round(float(v), 6) for v in a]

    return {
        "schema": SCHEMA, "version": VERSION, "fps": float(track.fps),
        "num_frames": track.num_frames, "channels": list(track.channels),
        "expression": {name: col(track.expression[:, k]) for k, name in enumerate(track.channels)},
        "pose": {name: col(track.pose[:, k]) for k, name in enumerate(POSE_FIELDS)},
        "blink": col(track.blink), "meta": _jsonable(track.meta),
    }


def _jsonable(value):
    """``value`` with numpy scalars and arrays turned into plain Python values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_json(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the top level must be a JSON object")
    _check_header(data.get("schema"), data.get("version"))
    channels = _names(data.get("channels"))
    expr = data.get("expression")
    pose = data.get("pose")
    if not isinstance(expr, dict) or not isinstance(pose, dict):
        raise ValueError("'expression' and 'pose' must be objects of per-frame lists")
    missing = [c for c in channels if c not in expr] + [p for p in POSE_FIELDS if p not in pose]
    if missing:
        raise ValueError(f"missing per-frame lists for {missing}")
    extra = [c for c in expr if c not in channels]
    if extra:
        raise ValueError(f"'expression' has channels {extra} not listed in 'channels'")
    return {
        "fps": data.get("fps"), "channels": channels,
        "expression": [_numbers(expr[c], f"expression.{c}") for c in channels],
        "pose": [_numbers(pose[p], f"pose.{p}") for p in POSE_FIELDS],
        "blink": _numbers(data.get("blink"), "blink"), "meta": data.get("meta", {}),
    }


def _read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        need = {"schema", "version", "fps", "channels", "expression", "pose", "blink"}
        missing = sorted(need - set(z.files))
        if missing:
            raise ValueError(f"missing arrays {missing}")
        _check_header(str(z["schema"]), int(z["version"]))
        expr, pose = np.asarray(z["expression"], np.float64), np.asarray(z["pose"], np.float64)
        if expr.ndim != 2 or pose.ndim != 2 or pose.shape[1] != len(POSE_FIELDS):
            raise ValueError(f"'expression' must be (T, C) and 'pose' (T, 6); got "
                             f"{expr.shape} and {pose.shape}")
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return {"fps": float(z["fps"]), "channels": _names(z["channels"].tolist()),
                "expression": list(expr.T), "pose": list(pose.T),
                "blink": np.asarray(z["blink"], np.float64), "meta": meta}


def _check_header(schema, version) -> None:
    if schema != SCHEMA:
        raise ValueError(f"'schema' must be {SCHEMA!r}, got {schema!r}")
    if version != VERSION:
        raise ValueError(f"unsupported schema version {version!r} (this talkinghead reads {VERSION})")


def _names(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("'channels' must be a list of channel names")
    if len(set(value)) != len(value):
        raise ValueError("'channels' lists a name twice")
    return tuple(value)


def _numbers(value, what: str) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ValueError(f"'{what}' must be a list of numbers")
    return np.asarray(value, np.float64)


def _validated(fields: dict, path: Path) -> MotionTrack:
    """A MotionTrack from parsed fields, after checking lengths, ranges and finiteness."""
    fps = fields["fps"]
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 1 <= fps <= 120:
        raise MotionFileError(f"{path}: 'fps' must be a number within 1..120, got {fps!r}")
    columns = {"blink": fields["blink"], **{f"pose.{p}": v for p, v in zip(POSE_FIELDS, fields["pose"])},
               **{f"expression.{c}": v for c, v in zip(fields["channels"], fields["expression"])}}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        detail = ", ".join(f"{k}: {len(v)}" for k, v in columns.items())
        raise MotionFileError(f"{path}: every per-frame list must have the same, non-zero "
                              f"length ({detail})")
    for name, v in columns.items():
        _check_range(path, name, v)
    if not isinstance(fields["meta"], dict):
        raise MotionFileError(f"{path}: 'meta' must be an object")
    n = lengths.pop()
    expr = np.stack(fields["expression"], axis=1) if fields["channels"] else np.zeros((n, 0))
    return MotionTrack(float(fps), fields["channels"], expr.astype(np.float32),
                       np.stack(fields["pose"], axis=1).astype(np.float32),
                       np.asarray(fields["blink"], np.float32), dict(fields["meta"]))


def _check_range(path: Path, name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise MotionFileError(f"{path}: '{name}' holds NaN or infinite values")
    limit = {"blink": 1.0, "pose.pitch": MAX_ABS_ANGLE, "pose.yaw": MAX_ABS_ANGLE,
             "pose.roll": MAX_ABS_ANGLE}.get(name, MAX_ABS_SHIFT if name.startswith("pose.")
                                            else MAX_ABS_WEIGHT)
    low = 0.0 if name == "blink" else -limit
    if values.min() < low or values.max() > limit:
        raise MotionFileError(f"{path}: '{name}' must lie within {low:g}..{limit:g}; found "
                              f"{values.min():.3g}..{values.max():.3g}")
