"""Face tracking over a video: the 478-point MediaPipe mesh per frame (video mode), head pose
relative to the first frame (Kabsch/Umeyama fit on rigid vertices) and eye openness.

Used for ``--ref-pose`` and ``--ref-blink``. The pose follows the renderer's convention:
a mesh point p of the first frame appears at R·(p − pivot) + pivot + t with
R = Rz(roll)·Ry(yaw)·Rx(pitch) in image axes (x right, y down, z away from the camera).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..audio.dsp import savgol2
from ..errors import NoFaceError, UserError
from ..types import ReferenceMotion
from . import regions as R
from ..quiet import native_stderr_silenced
from .landmarks import solutions

# rigid vertices: forehead, nose bridge and tip, eye corners, cheekbones, temples
STABLE = np.array([10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 127, 356,
                   234, 454, 116, 345, 50, 280, 101, 330, 21, 251, 54, 284, 103, 332, 67, 297,
                   109, 338, 70, 300])
EYE_PAIRS = ((160, 144), (159, 145), (158, 153), (387, 373), (386, 374), (385, 380))
EYE_WIDTHS = ((33, 133), (263, 362))
PIVOT_DEPTH = 0.9           # IOD behind the mesh centroid, as the face model's head pivot
MAX_SHIFT = 1.0             # IOD, translation copied at most
MAX_DEPTH = 3.0


def track_meshes(frames: Iterable[np.ndarray]) -> np.ndarray:
    """(T, 478, 3) float32 meshes of (H, W, 3) uint8 RGB frames, pixels; NaN without a face."""
    mp_mesh = solutions().face_mesh

    out = []
    with native_stderr_silenced(), \
            mp_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1,
                             min_detection_confidence=0.4, min_tracking_confidence=0.4) as mesher:
        for frame in frames:
            h, w = frame.shape[:2]
            found = mesher.process(np.ascontiguousarray(frame)).multi_face_landmarks
            mesh = np.full((R.NUM_VERTICES, 3), np.nan, np.float32)
            if found:
                lm = found[0].landmark
                mesh = (np.array([(p.x, p.y, p.z) for p in lm], np.float64) * (w, h, w))
            out.append(np.asarray(mesh, np.float32))
    return np.stack(out) if out else np.zeros((0, R.NUM_VERTICES, 3), np.float32)


def track_video(path: str | Path, max_seconds: float = 600.0) -> ReferenceMotion:
    """Head pose and eye openness of the face in a video file (at most ``max_seconds``)."""
    from ..media import iter_video_frames, probe_video

    if not Path(path).is_file():
        raise UserError(f"no reference video file at {path}: check the path and the spelling.")
    try:
        fps = probe_video(path).fps or 25.0
        frames = iter_video_frames(path)
        meshes = track_meshes(f for i, f in zip(range(int(max_seconds * fps)), frames))
    except ValueError as exc:
        raise UserError(f"cannot read the reference video {path}: {exc}") from exc
    return reference_from_meshes(meshes, fps, str(path))


def reference_from_meshes(meshes: np.ndarray, fps: float, source: str = "video") -> ReferenceMotion:
    """ReferenceMotion from (T, 478, 3) tracked meshes; raises ``NoFaceError`` without a face."""
    found = np.all(np.isfinite(meshes[:, STABLE]), axis=(1, 2))
    if not found.any():
        raise NoFaceError(f"no face found in the reference video {source}")
    first = int(np.argmax(found))
    pose = np.full((len(meshes), 6), np.nan)
    for t in np.nonzero(found)[0]:
        pose[t] = relative_pose(meshes[first], meshes[t])
    openness = np.where(found, eye_openness(meshes), np.nan)
    return ReferenceMotion(float(fps), _smooth(fill_gaps(pose)).astype(np.float32),
                           fill_gaps(openness).astype(np.float32))


def relative_pose(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """(6,) pose taking (478, 3) mesh ``ref`` to ``cur``: pitch, yaw, roll (rad), x, y, z (IOD)."""
    a, b = ref[STABLE].astype(np.float64), cur[STABLE].astype(np.float64)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    rot, scale = _umeyama(a - ca, b - cb)
    iod = float(np.linalg.norm(np.subtract(*R.eye_centers(ref))))
    # the renderer turns about a pivot behind the face: remove the shift that turn causes
    lever = np.array([0.0, 0.0, -PIVOT_DEPTH * iod])
    shift = (cb - ca - (scale * rot - np.eye(3)) @ lever) / iod
    z = -10.0 * np.log(max(scale, 1e-6))
    xy = np.clip(shift[:2], -MAX_SHIFT, MAX_SHIFT)
    return np.concatenate([euler_angles(rot), xy, [np.clip(z, -MAX_DEPTH, MAX_DEPTH)]])


def euler_angles(rot: np.ndarray) -> np.ndarray:
    """(3,) pitch, yaw, roll in radians of R = Rz(roll)·Ry(yaw)·Rx(pitch)."""
    yaw = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    return np.array([np.arctan2(rot[2, 1], rot[2, 2]), yaw, np.arctan2(rot[1, 0], rot[0, 0])])


def eye_openness(meshes: np.ndarray) -> np.ndarray:
    """(T,) mean lid gap / eye width of both eyes of (T, 478, 3) meshes (open ≈ 0.25–0.35)."""
    gaps = np.mean([np.linalg.norm(meshes[:, a, :2] - meshes[:, b, :2], axis=-1)
                    for a, b in EYE_PAIRS], axis=0)
    width = np.mean([np.linalg.norm(meshes[:, a, :2] - meshes[:, b, :2], axis=-1)
                     for a, b in EYE_WIDTHS], axis=0)
    return gaps / np.maximum(width, 1e-6)


def _umeyama(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotation (3, 3) and scale s minimising |s·R·a − b| for centred (N, 3) point sets."""
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sv) @ d) / max((a ** 2).sum(), 1e-9))
    return rot, scale


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Series (T, ...) with NaN rows filled by linear interpolation over time."""
    x = np.asarray(x, np.float64)
    flat = x.reshape(len(x), -1)
    ok = np.all(np.isfinite(flat), axis=1)
    t = np.arange(len(x))
    out = np.stack([np.interp(t, t[ok], flat[ok, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(x.shape)


def _smooth(pose: np.ndarray) -> np.ndarray:
    """Light temporal smoothing of tracked pose (tracker jitter), 5-frame order-2 Savitzky–Golay."""
    return savgol2(pose, 5, axis=0) if len(pose) > 5 else pose
