"""Framing: which part of the photo is animated and shown, at which resolution.

Crop modes follow SadTalker: ``crop`` (square around the face), ``extcrop`` (a larger square),
``resize`` (the whole photo squashed to a square), ``full`` / ``extfull`` (the whole photo at
its own resolution; only a window around the face, smaller or larger, is animated).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from . import regions as R
from .glasses import find_rims
from .matte import person_matte

MODES = ("crop", "extcrop", "resize", "full", "extfull")
CROP_SCALE = {"crop": 1.75, "extcrop": 2.6}
ROI_SCALE = {"crop": 3.0, "extcrop": 3.0, "resize": 3.0, "full": 2.4, "extfull": 3.2}
DEFAULT_SIZE = 512
FULL_MAX_SIDE = 1920


@dataclass(frozen=True)
class Framing:
    """The working picture that the renderer animates and writes out.

    ``image``: (H, W, 3) uint8, H and W even. ``scale``: (sx, sy) and ``offset``: (ox, oy) map
    photo pixels to working pixels: p' = (p - offset) · scale. ``roi``: (x0, y0, x1, y1) working
    pixels, the window that is warped; outside it every frame equals ``image``. ``matte``:
    (y1 - y0, x1 - x0) float32 in [0, 1], person probability over the window (None: unknown,
    the whole window may move). ``rims``: the lower edges of a glasses frame's top bars over
    the left and right eye ((K, 2) float32 working pixels, ``glasses.find_rims``), or None.
    """

    mode: str
    image: np.ndarray
    scale: tuple[float, float]
    offset: tuple[float, float]
    roi: tuple[int, int, int, int]
    matte: np.ndarray | None = None
    rims: tuple[np.ndarray, np.ndarray] | None = None

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) photo-pixel points → working pixels (z scaled by the mean scale)."""
        sx, sy = self.scale
        out = points.astype(np.float64).copy()
        out[:, 0] = (out[:, 0] - self.offset[0]) * sx
        out[:, 1] = (out[:, 1] - self.offset[1]) * sy
        out[:, 2] = out[:, 2] * (sx + sy) / 2
        return out.astype(np.float32)


def face_box(mesh: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and size (larger side of the face-oval box) of a pixel mesh."""
    oval = mesh[R.FACE_OVAL, :2]
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float(max(hi - lo))


def plan_framing(photo: np.ndarray, mesh: np.ndarray, mode: str = "crop",
                 size: int | None = None, matte: bool = True, glasses: bool = True) -> Framing:
    """Framing of a (H, W, 3) photo around its (478, 3) mesh for one crop ``mode``.

    ``size``: output side for the square modes (default 512, or the crop's own pixel size when
    smaller, so a small face is never upscaled unasked); ignored by ``full``/``extfull``.
    ``matte``: segment the person in the animated window (see ``Framing.matte``). ``glasses``:
    look for a glasses frame's bars (``Framing.rims``), in the photo itself, so that every size
    finds the same.
    """
    framing = _frame(photo, mesh, mode, size)
    rims = find_rims(photo, mesh) if glasses else None
    if rims is not None:
        rims = tuple(((e - framing.offset) * framing.scale).astype(np.float32) for e in rims)
    if not matte:
        return replace(framing, rims=rims)
    x0, y0, x1, y1 = framing.roi
    return replace(framing, rims=rims, matte=person_matte(framing.image[y0:y1, x0:x1]))


def _frame(photo: np.ndarray, mesh: np.ndarray, mode: str, size: int | None) -> Framing:
    if mode not in MODES:
        raise ValueError(f"unknown crop mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in ("full", "extfull"):
        return _full(photo, mesh, mode)
    if mode == "resize":
        side = _even(size or min(DEFAULT_SIZE, max(photo.shape[:2])))
        return _square(photo, mode, (0.0, 0.0), (photo.shape[1], photo.shape[0]), side, mesh)
    cx, cy, face = face_box(mesh)
    side_px = min(face * CROP_SCALE[mode], photo.shape[0], photo.shape[1])
    side = _even(size or min(DEFAULT_SIZE, int(side_px)))
    if size is None and side_px < DEFAULT_SIZE:
        side_px = float(side)
    x0 = float(np.clip(cx - side_px / 2, 0, photo.shape[1] - side_px))
    y0 = float(np.clip(cy - side_px / 2 - 0.05 * side_px, 0, photo.shape[0] - side_px))
    if side_px == side:
        x0, y0 = float(round(x0)), float(round(y0))
    return _square(photo, mode, (x0, y0), (side_px, side_px), side, mesh)


def _square(photo: np.ndarray, mode: str, origin: tuple[float, float], extent: tuple[float, float],
            side: int, mesh: np.ndarray) -> Framing:
    """Resample the photo window at ``origin`` of ``extent`` (w, h) pixels to side × side."""
    sx, sy = side / extent[0], side / extent[1]
    m = np.array([[sx, 0, -origin[0] * sx], [0, sy, -origin[1] * sy]])
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_CUBIC
    image = cv2.warpAffine(photo, m, (side, side), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    framing = Framing(mode, image, (sx, sy), origin, (0, 0, side, side))
    return _with_roi(framing, mesh)


def _full(photo: np.ndarray, mesh: np.ndarray, mode: str) -> Framing:
    h, w = photo.shape[:2]
    s = min(1.0, FULL_MAX_SIDE / max(h, w))
    nw, nh = _even(int(w * s)), _even(int(h * s))
    sx, sy = nw / w, nh / h
    if s < 1:
        image = cv2.resize(photo, (nw, nh), interpolation=cv2.INTER_AREA)
    else:
        image = np.ascontiguousarray(photo[:nh, :nw])
        sx = sy = 1.0
    framing = Framing(mode, image, (sx, sy), (0.0, 0.0), (0, 0, nw, nh))
    return _with_roi(framing, mesh)


def _with_roi(framing: Framing, mesh: np.ndarray) -> Framing:
    """The same framing with its animated window: a square around the face, inside the image."""
    h, w = framing.image.shape[:2]
    cx, cy, face = face_box(framing.map_points(mesh))
    half = face * ROI_SCALE[framing.mode] / 2
    roi = (max(0, int(cx - half)), max(0, int(cy - half * 0.9)),
           min(w, int(cx + half)), min(h, int(cy + half * 1.1)))
    return Framing(framing.mode, framing.image, framing.scale, framing.offset, roi)


def _even(n: int) -> int:
    return max(2, int(n) // 2 * 2)
