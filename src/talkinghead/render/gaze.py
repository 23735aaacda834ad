"""Turning the eyes in the head: the iris slides between the eye's corners, and down.

The frame's warp fetches each pixel of the eye opening somewhere in the photo's eye; turning
the eye moves those fetch positions. Sideways, along the line through the photo eye's
corners: the iris (its radius and a little white around it) moves rigidly, and the white on
either side is squeezed or stretched to the corners, which stay put, as on a turning eyeball.
Down, across that line, by as much as the lids are open there (all of it at the widest
column, tapering to the corners), under an upper lid that follows the eye down
(``lid_follow``) and covers what the turned eyeball leaves at the top.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_RADIUS_IOD = 0.19    # eyeball radius: about 12 mm of a 63 mm inter-ocular distance
RIGID_SHARE = 1.15       # of the iris radius: moves as one piece
MAX_SQUEEZE = 0.6        # the white between iris and corner shrinks to no less than 1 - this
MAX_DROP = 0.4           # of the eye's opening: the furthest the eye turns down
LID_COVER = 1.15         # the upper lid comes down this × the eyeball's drop


@dataclass(frozen=True)
class EyeAxis:
    """One eye of the photo in window pixels: ``start`` (2,) its corner on the image's left,
    ``axis`` (2,) unit vector to the other corner at ``length`` px, ``iris`` the iris centre's
    distance along the axis from ``start``, ``radius`` the iris radius; ``lid_u`` (K,)
    increasing distances along the axis where the lids are ``lid_gap`` (K,) px apart, and
    ``opening`` the widest gap, px."""

    start: np.ndarray
    axis: np.ndarray
    length: float
    iris: float
    radius: float
    lid_u: np.ndarray
    lid_gap: np.ndarray
    opening: float

    @classmethod
    def of(cls, points: np.ndarray, upper: np.ndarray, lower: np.ndarray,
           iris: np.ndarray) -> "EyeAxis":
        """From (478, 2) mesh ``points``, an eye's ``upper`` and ``lower`` lids (corner to
        corner) and its 5 ``iris`` vertices (centre first)."""
        a, b = points[upper[0]], points[upper[-1]]
        start, end = (a, b) if a[0] <= b[0] else (b, a)
        length = float(np.linalg.norm(end - start))
        axis = (end - start) / max(length, 1e-6)
        normal = np.array([-axis[1], axis[0]])
        centre = points[iris[0]]
        radius = float(np.mean(np.linalg.norm(points[iris[1:]] - centre, axis=1)))
        top, bottom = (_on_axis(points[lid] - start, axis, normal) for lid in (upper, lower))
        gap = np.clip(np.interp(top[:, 0], bottom[:, 0], bottom[:, 1]) - top[:, 1], 0.0, None)
        return cls(start.astype(np.float32), axis.astype(np.float32), length,
                   float((centre - start) @ axis), radius, top[:, 0], gap, float(gap.max(initial=0.0)))

    def along_px(self, turn_deg: float, iod: float) -> float:
        """Shift of the iris along the axis (px, positive to the image's right) for the eye
        turned ``turn_deg`` towards the image's left, within what the eye's white allows."""
        shift = -EYE_RADIUS_IOD * iod * float(np.sin(np.radians(turn_deg)))
        rigid = RIGID_SHARE * self.radius
        left, right = self.iris - rigid, self.length - self.iris - rigid
        return float(np.clip(shift, -MAX_SQUEEZE * max(left, 0.0), MAX_SQUEEZE * max(right, 0.0)))

    def drop_px(self, down_deg: float, iod: float) -> float:
        """How far the eye turned ``down_deg`` down moves at its widest column, px (>= 0)."""
        drop = EYE_RADIUS_IOD * iod * float(np.sin(np.radians(max(down_deg, 0.0))))
        return min(drop, MAX_DROP * self.opening)

    def lid_follow(self, drop: float, lower_rise: float) -> float:
        """Blink weight that brings the upper lid down over a ``drop`` px turn (a blink of
        weight w closes (1 - ``lower_rise``) × w of the opening from above)."""
        return LID_COVER * drop / max((1.0 - lower_rise) * self.opening, 1e-6)

    def turned(self, xy: np.ndarray, shift: float, drop: float = 0.0) -> np.ndarray:
        """(..., 2) float32 fetch positions ``xy`` (window px) for the iris shifted by ``shift``
        px along the axis (corners fixed, iris rigid, piecewise linear) and ``drop`` px down
        at the widest column (tapering with the opening)."""
        ax, ay = float(self.axis[0]), float(self.axis[1])
        x, y = xy[..., 0], xy[..., 1]
        along = (x - float(self.start[0])) * ax + (y - float(self.start[1])) * ay
        back = np.zeros(along.shape, np.float32)  # along the axis, to where the eye was
        rigid = RIGID_SHARE * self.radius
        shown = (0.0, self.iris - rigid + shift, self.iris + rigid + shift, self.length)
        if shift and 0.0 < shown[1] < shown[2] < self.length:
            back += np.interp(along, shown, (0.0, -shift, -shift, 0.0))
        up = np.zeros_like(back)  # across the axis (towards the brow), to where the eye was
        if drop > 0 and self.opening > 0:
            up += np.interp(along, self.lid_u, self.lid_gap, 0.0, 0.0) * (drop / self.opening)
        out = np.empty(xy.shape, np.float32)
        out[..., 0] = x + back * ax + up * ay
        out[..., 1] = y + back * ay - up * ax
        return out


def _on_axis(points: np.ndarray, axis: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(K, 2) (along, across) coordinates of (K, 2) points, sorted along."""
    uv = np.column_stack([points @ axis, points @ normal])
    return uv[np.argsort(uv[:, 0])]
