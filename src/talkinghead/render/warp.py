"""Dense warp of a picture from sparse point displacements.

Control points (mesh vertices, rings around the head, the window's border) are triangulated
once in the source picture. Each frame, their displacements are interpolated linearly inside
the triangles onto a coarse grid (a sparse matrix product), the forward field is inverted by a
damped fixed-point iteration (backward field b with b(x) = -f(x + b(x))), upsampled to full
resolution, and the picture is resampled with ``cv2.remap``.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

INVERSE_ITERATIONS = 6


class WarpField:
    """Backward maps for a ``width`` × ``height`` window from control-point displacements.

    ``points``: (P, 2) control points in window pixels. ``step``: grid spacing in pixels.
    """

    def __init__(self, points: np.ndarray, width: int, height: int, step: int = 4):
        self.width, self.height, self.step = width, height, step
        cols, rows = -(-width // step) + 1, -(-height // step) + 1
        offset = (step - 1) / 2
        gx = np.arange(cols, dtype=np.float32) * step + offset
        gy = np.arange(rows, dtype=np.float32) * step + offset
        self.grid_shape = (rows, cols)
        grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        self.weights = _barycentric_matrix(points.astype(np.float64), grid)
        self._grid_x, self._grid_y = np.meshgrid(np.arange(cols, dtype=np.float32),
                                                 np.arange(rows, dtype=np.float32))
        self._pix_x, self._pix_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                               np.arange(height, dtype=np.float32))

    def backward_maps(self, displacement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 2) forward displacements (pixels) → ``map_x, map_y`` (height, width) float32.

        Grid node (i, j) sits at pixel (j·step + (step-1)/2, i·step + (step-1)/2), so that an
        exact step× ``cv2.resize`` lands every node on its pixel.
        """
        forward = (self.weights @ displacement.astype(np.float32)).astype(np.float32)
        forward = forward.reshape(*self.grid_shape, 2) / self.step
        back = -forward
        for _ in range(INVERSE_ITERATIONS):
            at = cv2.remap(forward, self._grid_x + back[..., 0], self._grid_y + back[..., 1],
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            back = 0.5 * back - 0.5 * at
        rows, cols = self.grid_shape
        full = cv2.resize(back * self.step, (cols * self.step, rows * self.step),
                          interpolation=cv2.INTER_LINEAR)[:self.height, :self.width]
        return self._pix_x + full[..., 0], self._pix_y + full[..., 1]


def warp(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Resample an (H, W, 3) uint8 image at the backward maps (bicubic: keeps it sharp)."""
    fixed, fraction = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    return cv2.remap(image, fixed, fraction, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _barycentric_matrix(points: np.ndarray, grid: np.ndarray) -> sparse.csr_matrix:
    """(G, P) sparse matrix of the barycentric weights of each grid point in the triangulation."""
    tri = Delaunay(points)
    simplex = tri.find_simplex(grid)
    inside = simplex >= 0
    rows = np.nonzero(inside)[0]
    s = simplex[inside]
    transform = tri.transform[s]
    b = np.einsum("nij,nj->ni", transform[:, :2], grid[inside] - transform[:, 2])
    bary = np.column_stack([b, 1 - b.sum(axis=1)])
    cols = tri.simplices[s]
    return sparse.csr_matrix(
        (bary.ravel().astype(np.float32), (np.repeat(rows, 3), cols.ravel())),
        shape=(len(grid), len(points)),
    )
