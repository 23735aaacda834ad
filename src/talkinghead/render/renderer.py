"""Per-frame rendering: pose and deform the mesh, warp the photo, paint the mouth interior."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import regions as R
from ..face.crop import Framing
from ..types import FaceFit
from .mouth import MouthLook, paint_mouth
from .warp import WarpField, warp

# rings of control points around the head: (scale of the face oval, rigid weight, expression weight)
RINGS = ((1.22, 0.92, 0.45), (1.55, 0.6, 0.12), (2.1, 0.22, 0.0))
BELOW_CHIN_DAMPING = 0.45
BORDER_POINTS = 12
OPEN_SOURCE_MOUTH = 0.08


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """(3, 3) rotation in image axes (x right, y down, z away): roll · yaw · pitch, radians."""
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Rings:
    """Control points around the head. ``points``: (K, 3) working pixels; ``vertex``: (K,) the
    face-oval vertex each was pushed out from; ``rigid``, ``expression``: (K,) how much of the
    head's rigid motion and of that vertex's expression motion it follows."""

    points: np.ndarray
    vertex: np.ndarray
    rigid: np.ndarray
    expression: np.ndarray


class Renderer:
    """Renders frames of one framed photo. ``fit`` must be in the framing's working pixels."""

    def __init__(self, framing: Framing, fit: FaceFit, grid_step: int | None = None):
        self.framing, self.fit = framing, fit
        x0, y0, x1, y1 = framing.roi
        self.origin = np.array([x0, y0], dtype=np.float32)
        self.window = np.ascontiguousarray(framing.image[y0:y1, x0:x1])
        self.rings = _rings(fit, framing.roi)
        border = _border_points(x1 - x0, y1 - y0)
        points = np.concatenate([fit.mesh[:, :2], self.rings.points[:, :2]]) - self.origin
        step = grid_step or max(3, int(round(max(x1 - x0, y1 - y0) / 128)))
        self.field = WarpField(np.concatenate([points, border]), x1 - x0, y1 - y0, step)
        self.border_zeros = np.zeros((len(border), 2), np.float32)
        self.look = _mouth_look(framing.image, fit)
        self.blink_channels = [fit.channels.index("blink_left"), fit.channels.index("blink_right")]
        self.paint_interior = bool(fit.source_expression[0] < OPEN_SOURCE_MOUTH)

    def posed_mesh(self, expression: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        """(478, 3) working-pixel mesh for (C,) expression weights, (6,) pose, blink in [0, 1]."""
        weights = expression.astype(np.float32).copy()
        weights[self.blink_channels] = np.clip(weights[self.blink_channels] + blink, 0, 1)
        mesh = self.fit.neutral + np.tensordot(weights, self.fit.basis, axes=1)
        return self._rigid(mesh, pose)

    def render(self, expression: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        """One (H, W, 3) uint8 frame of the working picture."""
        mesh = self.posed_mesh(expression, pose, blink)
        map_x, map_y = self.field.backward_maps(self._displacement(mesh, pose))
        window = warp(self.window, map_x, map_y)
        if self.paint_interior:
            local = mesh[:, :2] - self.origin
            paint_mouth(window, local[R.UPPER_INNER], local[R.LOWER_INNER], self.look)
        return self._compose(window)

    def _displacement(self, mesh: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(P, 2) forward displacement of every control point, pixels."""
        rings = self.rings
        rigid = self._rigid(rings.points, pose)[:, :2] - rings.points[:, :2]
        expr = mesh[rings.vertex, :2] - self._rigid(self.fit.neutral[rings.vertex], pose)[:, :2]
        ring_disp = rigid * rings.rigid[:, None] + expr * rings.expression[:, None]
        return np.concatenate([mesh[:, :2] - self.fit.mesh[:, :2], ring_disp, self.border_zeros])

    def _compose(self, window: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.framing.roi
        full = self.framing.image
        if (x0, y0, x1, y1) == (0, 0, full.shape[1], full.shape[0]):
            return window
        frame = full.copy()
        frame[y0:y1, x0:x1] = window
        return frame

    def _rigid(self, points: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Rotate (N, 3) points about the head pivot and translate (pose translation in IOD)."""
        rot = rotation(*pose[:3]).astype(np.float32)
        c = self.fit.center
        scale = np.float32(np.exp(-0.1 * pose[5]))
        out = (points - c) @ rot.T * scale + c
        out[:, :2] += np.asarray(pose[3:5], dtype=np.float32) * self.fit.iod
        return out


def _rings(fit: FaceFit, roi: tuple[int, int, int, int]) -> Rings:
    """Rings of control points pushed out from the face oval, kept inside the window."""
    oval = fit.mesh[R.FACE_OVAL]
    centre = oval.mean(axis=0)
    chin_y = fit.mesh[R.CHIN, 1]
    x0, y0, x1, y1 = roi
    margin = 0.02 * max(x1 - x0, y1 - y0)
    parts = []
    for scale, rigid, expression in RINGS:
        pts = oval.copy()
        pts[:, :2] = centre[:2] + (oval[:, :2] - centre[:2]) * scale
        damp = np.where(pts[:, 1] > chin_y, BELOW_CHIN_DAMPING, 1.0)
        inside = (pts[:, 0] > x0 + margin) & (pts[:, 0] < x1 - margin) & \
                 (pts[:, 1] > y0 + margin) & (pts[:, 1] < y1 - margin)
        parts.append((pts[inside], R.FACE_OVAL[inside], (rigid * damp)[inside],
                      np.full(inside.sum(), expression)))
    cat = [np.concatenate(p) for p in zip(*parts)]
    return Rings(cat[0].astype(np.float32), cat[1], cat[2].astype(np.float32), cat[3].astype(np.float32))


def _border_points(width: int, height: int) -> np.ndarray:
    """(4 · BORDER_POINTS, 2) points along the window border, which never move."""
    t = np.linspace(0, 1, BORDER_POINTS, endpoint=False)
    w, h = width - 1, height - 1
    return np.concatenate([
        np.column_stack([t * w, np.zeros_like(t)]), np.column_stack([np.full_like(t, w), t * h]),
        np.column_stack([w - t * w, np.full_like(t, h)]), np.column_stack([np.zeros_like(t), h - t * h]),
    ]).astype(np.float32)


def _mouth_look(image: np.ndarray, fit: FaceFit) -> MouthLook:
    """Lip and skin colours sampled from the photo at mesh vertices."""
    def sample(idx: np.ndarray) -> np.ndarray:
        xy = np.round(fit.mesh[idx, :2]).astype(int)
        xy[:, 0] = np.clip(xy[:, 0], 0, image.shape[1] - 1)
        xy[:, 1] = np.clip(xy[:, 1], 0, image.shape[0] - 1)
        return image[xy[:, 1], xy[:, 0]].astype(np.float32).mean(axis=0)

    lips = np.concatenate([R.UPPER_OUTER[2:-2], R.LOWER_OUTER[2:-2]])
    cheeks = np.array([50, 280, 101, 330, 205, 425])
    return MouthLook(lip=sample(lips), skin=sample(cheeks), iod=fit.iod)
