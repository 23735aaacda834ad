"""Dense warp of a picture from sparse point displacements.

Control points (mesh vertices, rings around the head, the window's border) are triangulated
once in the source picture. Each frame, their displacements are interpolated linearly inside
the triangles onto a coarse grid (a sparse matrix product), scaled by a per-node mobility
(0 on the background, so that it stays put), the forward field is inverted by a damped
fixed-point iteration (backward field b with b(x) = -f(x + b(x))), and only the rectangle of
the window that moves is upsampled to full resolution and resampled with ``cv2.remap``; the
rest of the window is copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

INVERSE_ITERATIONS = 6
STILL_PX = 0.02  # a backward displacement below this (pixels) is no motion at all
BARY_TOLERANCE = 1e-9  # a grid node this far outside a triangle (barycentric) still lies in it


@dataclass(frozen=True)
class BackwardMap:
    """Where each output pixel of the moving rectangle samples the source window.

    ``box``: (x0, y0, x1, y1) window pixels of the rectangle that moves (empty when x1 == x0);
    ``xy``: (y1 - y0, x1 - x0, 2) float32 source coordinates (x, y) in window pixels.
    """

    box: tuple[int, int, int, int]
    xy: np.ndarray

    @property
    def empty(self) -> bool:
        return self.box[2] <= self.box[0] or self.box[3] <= self.box[1]


class WarpField:
    """Backward maps for a ``width`` × ``height`` window from control-point displacements.

    ``points``: (P, 2) control points in window pixels. ``step``: grid spacing in pixels.
    ``mobility``: optional (height, width) float32 in [0, 1], how much each pixel may move
    (the person matte: 0 keeps the background still); None: everything may move.
    """

    def __init__(self, points: np.ndarray, width: int, height: int, step: int = 4,
                 mobility: np.ndarray | None = None):
        self.width, self.height, self.step = width, height, step
        cols, rows = -(-width // step) + 1, -(-height // step) + 1
        offset = (step - 1) / 2
        gx = np.arange(cols, dtype=np.float32) * step + offset
        gy = np.arange(rows, dtype=np.float32) * step + offset
        self.grid_shape = (rows, cols)
        self.weights = _barycentric_matrix(points.astype(np.float64), gx, gy)
        self.mobility = None if mobility is None else _grid_mobility(mobility, gx, gy)
        self._grid_x, self._grid_y = np.meshgrid(np.arange(cols, dtype=np.float32),
                                                 np.arange(rows, dtype=np.float32))
        self._pix = np.stack(np.meshgrid(np.arange(cols * step, dtype=np.float32),
                                         np.arange(rows * step, dtype=np.float32)), axis=-1)

    def grid_backward(self, displacement: np.ndarray) -> np.ndarray:
        """(P, 2) forward displacements (pixels) → (rows, cols, 2) backward field on the grid,
        in pixels. Grid node (i, j) sits at pixel (j·step + (step-1)/2, i·step + (step-1)/2)."""
        forward = (self.weights @ displacement.astype(np.float32)).astype(np.float32)
        forward = forward.reshape(*self.grid_shape, 2) / self.step
        if self.mobility is not None:
            forward *= self.mobility[..., None]
        back = -forward
        for _ in range(INVERSE_ITERATIONS):
            at = cv2.remap(forward, self._grid_x + back[..., 0], self._grid_y + back[..., 1],
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            back = 0.5 * back - 0.5 * at
        return back * self.step

    def backward_map(self, displacement: np.ndarray,
                     within: tuple[int, int, int, int] | None = None) -> BackwardMap:
        """(P, 2) forward displacements (pixels) → the backward map of the moving rectangle
        (``within``: of that (x0, y0, x1, y1) pixel rectangle instead, moving or not).

        An exact step× ``cv2.resize`` of a block of grid nodes lands every node on its pixel,
        so the rectangle is cut on node boundaries, one still node wider than the motion.
        """
        back = self.grid_backward(displacement)
        s = self.step
        if within is not None:
            r0, c0 = max(within[1] // s, 0), max(within[0] // s, 0)
            r1 = min(-(-within[3] // s) + 1, self.grid_shape[0])
            c1 = min(-(-within[2] // s) + 1, self.grid_shape[1])
            return self._upsample(back, r0, r1, c0, c1)
        moving = np.abs(back).max(axis=-1) > STILL_PX
        if not moving.any():
            return BackwardMap((0, 0, 0, 0), np.zeros((0, 0, 2), np.float32))
        rows, cols = np.nonzero(moving.any(axis=1))[0], np.nonzero(moving.any(axis=0))[0]
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, self.grid_shape[0])
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, self.grid_shape[1])
        return self._upsample(back, r0, r1, c0, c1)

    def _upsample(self, back: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> BackwardMap:
        """Backward map of the pixels of grid block rows r0:r1, columns c0:c1."""
        s = self.step
        block = np.ascontiguousarray(back[r0:r1, c0:c1])
        up = cv2.resize(block, ((c1 - c0) * s, (r1 - r0) * s), interpolation=cv2.INTER_LINEAR)
        x0, y0 = c0 * s, r0 * s
        x1, y1 = min(c1 * s, self.width), min(r1 * s, self.height)
        up = up[:y1 - y0, :x1 - x0]
        up += self._pix[y0:y1, x0:x1]
        return BackwardMap((x0, y0, x1, y1), up)

    def backward_maps(self, displacement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 2) forward displacements → ``map_x, map_y`` (height, width) float32, whole window."""
        m = self.backward_map(displacement)
        full = self._pix[:self.height, :self.width].copy()
        x0, y0, x1, y1 = m.box
        if not m.empty:
            full[y0:y1, x0:x1] = m.xy
        return np.ascontiguousarray(full[..., 0]), np.ascontiguousarray(full[..., 1])


def warp(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Resample an (H, W, 3) uint8 image at the backward maps (bicubic: keeps it sharp)."""
    return cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def warp_into(out: np.ndarray, source: np.ndarray, backward: BackwardMap,
              sharp: tuple[int, int, int, int] | None = None) -> None:
    """Resample the moving rectangle of ``source`` (H, W, 3) uint8 into ``out`` (same shape,
    a copy of ``source``), in place. Bicubic (keeps detail sharp) inside ``sharp`` (x0, y0, x1,
    y1 window pixels: the face), bilinear (2-3× cheaper) in the rest, which moves less; None:
    bicubic everywhere."""
    if backward.empty:
        return
    bx0, by0, bx1, by1 = backward.box
    if sharp is None:
        sharp = backward.box
    sx0, sy0 = min(max(sharp[0], bx0), bx1), min(max(sharp[1], by0), by1)
    sx1, sy1 = max(min(sharp[2], bx1), sx0), max(min(sharp[3], by1), sy0)
    parts = ((bx0, by0, bx1, sy0, cv2.INTER_LINEAR), (bx0, sy1, bx1, by1, cv2.INTER_LINEAR),
             (bx0, sy0, sx0, sy1, cv2.INTER_LINEAR), (sx1, sy0, bx1, sy1, cv2.INTER_LINEAR),
             (sx0, sy0, sx1, sy1, cv2.INTER_CUBIC))
    for x0, y0, x1, y1, interpolation in parts:
        if x1 > x0 and y1 > y0:
            xy = backward.xy[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
            out[y0:y1, x0:x1] = cv2.remap(source, xy, None, interpolation,
                                          borderMode=cv2.BORDER_REPLICATE)


def _grid_mobility(mobility: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """(rows, cols) float32 mobility sampled at the grid nodes (area-averaged)."""
    h, w = mobility.shape
    step = gx[1] - gx[0] if len(gx) > 1 else 1.0
    blurred = cv2.blur(mobility.astype(np.float32), (int(step) | 1, int(step) | 1))
    xs = np.clip(np.round(gx).astype(int), 0, w - 1)
    ys = np.clip(np.round(gy).astype(int), 0, h - 1)
    return np.ascontiguousarray(blurred[ys][:, xs])


def _barycentric_matrix(points: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> sparse.csr_matrix:
    """(G, P) sparse matrix of the barycentric weights of each node of the grid ``gx`` × ``gy``
    (G = len(gy) · len(gx), row-major) in the Delaunay triangulation of (P, 2) ``points``.

    Nodes are located by testing each triangle against the nodes of its bounding box, in
    closed form: SciPy's ``find_simplex`` computes its transforms with threaded LAPACK calls,
    which take seconds instead of milliseconds when the cores are busy (OpenBLAS threads
    waiting for each other under load). Nodes outside the hull get no weights.
    """
    simplices = Delaunay(points).simplices  # (T, 3) point indices
    corners = points[simplices]  # (T, 3, 2)
    tri, rows, cols = _bbox_nodes(corners, gx, gy)
    xy = np.stack([gx[cols], gy[rows]], axis=1).astype(np.float64)
    a, b, c = corners[tri, 0], corners[tri, 1], corners[tri, 2]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    d = xy - a
    w1 = (d[:, 0] * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * d[:, 1]) / det
    w2 = ((b[:, 0] - a[:, 0]) * d[:, 1] - d[:, 0] * (b[:, 1] - a[:, 1])) / det
    bary = np.stack([1 - w1 - w2, w1, w2], axis=1)
    node = rows * len(gx) + cols
    order = np.lexsort((-bary.min(axis=1), node))  # per node, the triangle it lies deepest in
    first = order[np.r_[True, node[order][1:] != node[order][:-1]]]
    keep = first[bary[first].min(axis=1) >= -BARY_TOLERANCE]
    return sparse.csr_matrix(
        (bary[keep].ravel().astype(np.float32),
         (np.repeat(node[keep], 3), simplices[tri[keep]].ravel())),
        shape=(len(gx) * len(gy), len(points)),
    )


def _bbox_nodes(corners: np.ndarray, gx: np.ndarray,
                gy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (triangle, grid node) pair with the node in the triangle's bounding box, for
    (T, 3, 2) ``corners`` and increasing node coordinates ``gx``, ``gy`` (pixels): three
    (N,) int arrays, triangle index, node row, node column."""
    lo, hi = corners.min(axis=1) - BARY_TOLERANCE, corners.max(axis=1) + BARY_TOLERANCE
    c0, c1 = np.searchsorted(gx, lo[:, 0]), np.searchsorted(gx, hi[:, 0], side="right")
    r0, r1 = np.searchsorted(gy, lo[:, 1]), np.searchsorted(gy, hi[:, 1], side="right")
    width, height = np.maximum(c1 - c0, 0), np.maximum(r1 - r0, 0)
    counts = width * height
    tri = np.repeat(np.arange(len(corners)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    w = width[tri]
    return tri, r0[tri] + k // w, c0[tri] + k % w
