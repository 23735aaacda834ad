"""Turning the eyes in the head: the iris slides between the eye's corners.

The frame's warp fetches each pixel of the eye opening somewhere in the photo's eye; turning
the eye moves those fetch positions along the line through the photo eye's corners. The
iris (its radius and a little white around it) moves rigidly by the shift, and the white on
either side is squeezed or stretched to the corners, which stay put, as on a turning eyeball.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_RADIUS_IOD = 0.19    # eyeball radius: about 12 mm of a 63 mm inter-ocular distance
RIGID_SHARE = 1.15       # of the iris radius: moves as one piece
MAX_SQUEEZE = 0.6        # the white between iris and corner shrinks to no less than 1 - this


@dataclass(frozen=True)
class EyeAxis:
    """One eye of the photo in window pixels: ``start`` (2,) its corner on the image's left,
    ``axis`` (2,) unit vector to the other corner at ``length`` px, ``iris`` the iris centre's
    distance along the axis from ``start``, ``radius`` the iris radius, px."""

    start: np.ndarray
    axis: np.ndarray
    length: float
    iris: float
    radius: float

    @classmethod
    def of(cls, points: np.ndarray, upper: np.ndarray, iris: np.ndarray) -> "EyeAxis":
        """From (478, 2) mesh ``points``, an eye's ``upper`` lid (corner to corner) and its 5
        ``iris`` vertices (centre first)."""
        a, b = points[upper[0]], points[upper[-1]]
        start, end = (a, b) if a[0] <= b[0] else (b, a)
        length = float(np.linalg.norm(end - start))
        axis = (end - start) / max(length, 1e-6)
        centre = points[iris[0]]
        radius = float(np.mean(np.linalg.norm(points[iris[1:]] - centre, axis=1)))
        return cls(start.astype(np.float32), axis.astype(np.float32), length,
                   float((centre - start) @ axis), radius)

    def shift_px(self, turn_deg: float, iod: float) -> float:
        """Shift of the iris along the axis (px, positive to the image's right) for the eye
        turned ``turn_deg`` towards the image's left, within what the eye's white allows."""
        shift = -EYE_RADIUS_IOD * iod * float(np.sin(np.radians(turn_deg)))
        rigid = RIGID_SHARE * self.radius
        left, right = self.iris - rigid, self.length - self.iris - rigid
        return float(np.clip(shift, -MAX_SQUEEZE * max(left, 0.0), MAX_SQUEEZE * max(right, 0.0)))

    def turned(self, xy: np.ndarray, shift: float) -> np.ndarray:
        """(..., 2) float32 fetch positions ``xy`` (window px) for the iris shifted by ``shift``
        px: positions along the axis map piecewise linearly (corners fixed, iris rigid)."""
        rigid = RIGID_SHARE * self.radius
        shown = [0.0, self.iris - rigid + shift, self.iris + rigid + shift, self.length]
        source = [0.0, self.iris - rigid, self.iris + rigid, self.length]
        if not 0.0 < shown[1] < shown[2] < self.length:
            return xy
        along = (xy - self.start) @ self.axis
        delta = np.interp(along, shown, np.subtract(source, shown))
        return (xy + delta[..., None] * self.axis).astype(np.float32)
