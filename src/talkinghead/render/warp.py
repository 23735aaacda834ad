"""Dense warp of a picture from sparse point displacements.

Control points (mesh vertices, rings around the head, the window's border) are triangulated
once in the source picture. Each frame, their displacements are interpolated linearly inside
the triangles onto a coarse grid (three weighted points per node), scaled by a per-node mobility
(0 on the background, so that it stays put), and the forward field is inverted by a damped
fixed-point iteration (backward field b with b(x) = -f(x + b(x))). The field is smooth, so
only the grid is computed per frame: one ``cv2.resize`` of the moving block of nodes gives the
source position of every pixel, exactly the bilinear interpolation of the nodes. Pixels are
resampled with ``cv2.remap`` only in horizontal bands around the nodes that move (as sharply as
bicubic sampling would, see ``Picture``); every other pixel is the source pixel, untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INVERSE_ITERATIONS = 6
STILL_PX = 0.02  # a backward displacement below this (pixels) is no motion at all
BARY_TOLERANCE = 1e-9  # a grid node this far outside a triangle (barycentric) still lies in it
UNFOLD_MIN_AREA = 0.25  # a grid cell may shrink to this share of its area, no further
UNFOLD_ROUNDS = 8
SMOOTH_CELLS = 2.0  # Gaussian sigma, grid cells, of the smoothed (rigid) part of the field
BAND_PX = 64  # band height, pixels: taller bands mean fewer remap calls, shorter ones less still area
UNSHARP = (1.5, 0.2)  # Gaussian sigma (px of the doubled picture) and amount sharpening it
FAR_RECT = 50  # Subdiv2D's bounding rectangle reaches this many point spans beyond them

Span = tuple[int, int, int, int]  # x0, y0, x1, y1 window pixels


@dataclass(frozen=True)
class BackwardMap:
    """Where each output pixel of the moving rectangle samples the source window.

    ``box``: (x0, y0, x1, y1) window pixels of the rectangle that moves (empty when x1 == x0);
    ``xy``: (y1 - y0, x1 - x0, 2) float32 source coordinates (x, y) in window pixels;
    ``spans``: rectangles inside ``box`` to resample; the pixels of ``box`` outside every span
    sample their own position (they do not move).
    """

    box: tuple[int, int, int, int]
    xy: np.ndarray
    spans: tuple[Span, ...] = ()

    @property
    def empty(self) -> bool:
        return self.box[2] <= self.box[0] or self.box[3] <= self.box[1]


class WarpField:
    """Backward maps for a ``width`` × ``height`` window from control-point displacements.

    ``points``: (P, 2) control points in window pixels. ``step``: grid spacing in pixels; node
    (i, j) sits at pixel (j·step + (step-1)/2, i·step + (step-1)/2), in the middle of its cell,
    the pixels [j·step, (j+1)·step) × [i·step, (i+1)·step). ``mobility``: optional (height,
    width) float32 in [0, 1], how much each pixel may move (the person matte: 0 keeps the
    background still); None: everything may move.
    """

    def __init__(self, points: np.ndarray, width: int, height: int, step: int = 4,
                 mobility: np.ndarray | None = None):
        self.width, self.height, self.step = width, height, step
        cols, rows = -(-width // step) + 1, -(-height // step) + 1
        offset = (step - 1) / 2
        gx = np.arange(cols, dtype=np.float32) * step + offset
        gy = np.arange(rows, dtype=np.float32) * step + offset
        self.grid_shape = (rows, cols)
        self.corners, self.weights = _barycentric(points.astype(np.float64), gx, gy)
        self.mobility = None if mobility is None else _grid_mobility(mobility, gx, gy)
        self._grid_x, self._grid_y = np.meshgrid(np.arange(cols, dtype=np.float32),
                                                 np.arange(rows, dtype=np.float32))
        self._zeros = (np.zeros((rows, cols), np.float32),) * 2
        # positions of the nodes with one extra node on every side (index k is node k - 1)
        px = np.arange(-1, cols + 1, dtype=np.float32) * step + offset
        py = np.arange(-1, rows + 1, dtype=np.float32) * step + offset
        self._nodes = np.stack(np.meshgrid(px, py), axis=-1)

    def grid_backward(self, displacement: np.ndarray, folds: np.ndarray | None = None,
                      smooth: np.ndarray | None = None) -> np.ndarray:
        """(P, 2) forward displacements (pixels) → (rows, cols, 2) backward field on the grid,
        in pixels. ``smooth``: (P, 2) more displacements whose field is smoothed before it is
        added (SMOOTH_CELLS): the head's rigid motion, which the triangles would interpolate
        with a kink at every edge — at a large head turn, a saw-tooth along the face's stretched
        side. Folds are relaxed (``unfolded``) except in the ``folds`` (rows, cols) bool
        cells, where closing eyes and lips must fold."""
        forward = self._grid_field(displacement)
        if smooth is not None:
            forward += self._smoothed(self._grid_field(smooth), folds)
        if self.mobility is not None:
            forward *= self.mobility[..., None]
        # four channels (x, y, 0, 0): OpenCV vectorises four-channel bilinear remaps (2× faster)
        forward = cv2.merge([*cv2.split(unfolded(forward, folds)), *self._zeros])
        back = -forward
        map_x, map_y, at = np.empty_like(self._grid_x), np.empty_like(self._grid_y), np.empty_like(back)
        for _ in range(INVERSE_ITERATIONS):
            np.add(self._grid_x, back[..., 0], out=map_x)
            np.add(self._grid_y, back[..., 1], out=map_y)
            cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, dst=at,
                      borderMode=cv2.BORDER_REPLICATE)
            back *= 0.5
            back -= np.multiply(at, 0.5, out=at)
        return back[..., :2] * np.float32(self.step)

    @staticmethod
    def _smoothed(field: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        """(rows, cols, 2) ``field`` smoothed (SMOOTH_CELLS), except around the ``keep``
        (rows, cols) bool cells (eyes and lips, posed exactly by the mesh), eased in."""
        soft = cv2.GaussianBlur(field, (0, 0), SMOOTH_CELLS)
        if keep is None or not keep.any():
            return soft
        near = cv2.dilate(keep.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
        exact = cv2.GaussianBlur(near, (0, 0), 1.0)[..., None]
        return soft + exact * (field - soft)

    def _grid_field(self, displacement: np.ndarray) -> np.ndarray:
        """(P, 2) displacements, pixels → (rows, cols, 2) float32 forward field, grid cells."""
        # each (x, y) as one complex number: one gather per corner (faster than scipy.sparse)
        moved = np.ascontiguousarray(displacement, np.float32).view(np.complex64).ravel()
        corners = moved[self.corners]  # (3, G)
        forward = corners[0] * self.weights[0]
        forward += corners[1] * self.weights[1]
        forward += corners[2] * self.weights[2]
        return forward.view(np.float32).reshape(*self.grid_shape, 2) / np.float32(self.step)

    def cell_mask(self, polygon: np.ndarray, margin: float) -> np.ndarray:
        """(rows, cols) bool: the cells within ``margin`` pixels of a convex (K, 2) polygon
        (window pixels), or touching it."""
        s = self.step
        mask = np.zeros(self.grid_shape, np.uint8)
        cells = np.round((polygon - (s - 1) / 2) / s * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, cells, 1, cv2.LINE_8, shift=4)
        reach = int(np.ceil(margin / s)) + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        return cv2.dilate(mask, kernel).astype(bool)

    def backward_map(self, displacement: np.ndarray, folds: np.ndarray | None = None,
                     smooth: np.ndarray | None = None) -> BackwardMap:
        """(P, 2) forward displacements (pixels) → the backward map of the moving cells, in
        bands (``maps_within``: of given rectangles instead). ``folds``, ``smooth``: see
        ``grid_backward``."""
        back = self.grid_backward(displacement, folds, smooth)
        # a cell beside a moving node holds pixels interpolated towards it: it moves too
        moving = ((np.abs(back[..., 0]) > STILL_PX) | (np.abs(back[..., 1]) > STILL_PX)).astype(np.uint8)
        moving = cv2.dilate(moving, np.ones((3, 3), np.uint8)).astype(bool)
        spans = _band_spans(moving, self.step, self.width, self.height)
        if not spans:
            return BackwardMap((0, 0, 0, 0), np.zeros((0, 0, 2), np.float32))
        box = (min(sp[0] for sp in spans), min(sp[1] for sp in spans),
               max(sp[2] for sp in spans), max(sp[3] for sp in spans))
        return BackwardMap(box, self._upsample(back, box), tuple(spans))

    def maps_within(self, displacement: np.ndarray, boxes: list[tuple[int, int, int, int]],
                    folds: np.ndarray | None = None,
                    smooth: np.ndarray | None = None) -> list[BackwardMap]:
        """The maps of (x0, y0, x1, y1) pixel rectangles, moving or not, each one span, from
        one inversion of the field. ``folds``, ``smooth``: see ``grid_backward``."""
        back = self.grid_backward(displacement, folds, smooth)
        maps = []
        for x0, y0, x1, y1 in boxes:
            box = (max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height))
            maps.append(BackwardMap(box, self._upsample(back, box), (box,)))
        return maps

    def _upsample(self, back: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """(y1 - y0, x1 - x0, 2) float32 source positions of the pixels of ``box`` (x0, y0,
        x1, y1): the bilinear interpolation of the (rows, cols, 2) backward grid ``back`` plus
        the node positions. An exact step× ``cv2.resize`` of a block of nodes puts node k of
        the block on pixel k·step + (step-1)/2, so one extra node on each side of the block
        makes every pixel an interpolation between nodes, never a clamped copy."""
        s = self.step
        x0, y0, x1, y1 = box
        (c0, c1), (r0, r1) = _node_range(x0, x1, s), _node_range(y0, y1, s)
        padded = cv2.copyMakeBorder(back, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
        block = padded[r0:r1, c0:c1] + self._nodes[r0:r1, c0:c1]
        up = cv2.resize(block, ((c1 - c0) * s, (r1 - r0) * s), interpolation=cv2.INTER_LINEAR)
        qx, qy = x0 - (c0 - 1) * s, y0 - (r0 - 1) * s
        return up[qy:qy + y1 - y0, qx:qx + x1 - x0]


@dataclass(frozen=True)
class Picture:
    """A source picture as ``warp_into`` samples it: ``double`` (2H, 2W, 4) uint8, the picture
    enlarged twice (Lanczos, then UNSHARP), with a fourth channel (OpenCV vectorises
    four-channel bilinear remaps: 1.7× faster, converting back included). Bilinear sampling of
    it is as sharp as bicubic sampling of the picture and 2× faster (on five portraits'
    renders: Laplacian variance 1.00-1.03× at half scale, 1.01-1.12× at full, 50-61 dB apart)."""

    double: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray) -> Picture:
        rgba = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2RGBA)
        double = cv2.resize(rgba, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)
        sigma, amount = UNSHARP
        soft = cv2.GaussianBlur(double, (0, 0), sigma)
        return cls(cv2.addWeighted(double, 1 + amount, soft, -amount, 0.0))

    def sample(self, xy: np.ndarray, out: np.ndarray) -> None:
        """Resample at (h, w, 2) float32 source positions into ``out`` (h, w, 3) uint8 RGB
        (pixel x of the picture is x·2 + 0.5 of ``double``)."""
        sampled = cv2.remap(self.double, xy * np.float32(2) + np.float32(0.5), None,
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.cvtColor(sampled, cv2.COLOR_RGBA2RGB, dst=out)


def warp_into(out: np.ndarray, source: Picture, backward: BackwardMap) -> None:
    """Resample the spans of ``backward`` from ``source`` into ``out`` (H, W, 3) uint8 (a copy
    of the source), in place; the pixels outside the spans are left as they are."""
    bx0, by0 = backward.box[:2]
    for x0, y0, x1, y1 in backward.spans:
        source.sample(backward.xy[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0], out[y0:y1, x0:x1])


def fold_measure(forward: np.ndarray) -> np.ndarray:
    """(rows, cols) Jacobian determinant of the map p → p + ``forward`` (rows, cols, 2) in grid
    units (1: no local area change; ≤ 0: the map folds over itself there)."""
    d_cols, d_rows = _gradient(forward, 1), _gradient(forward, 0)
    return (d_cols[..., 0] + 1) * (d_rows[..., 1] + 1) - d_rows[..., 0] * d_cols[..., 1]


CENTRAL_DIFFERENCE = np.array([[-0.5, 0.0, 0.5]], np.float32)


def _gradient(field: np.ndarray, axis: int) -> np.ndarray:
    """``np.gradient`` of a (rows, cols, C ≤ 4) float32 field along ``axis`` (0 or 1), every
    channel in one filter: central differences inside, one-sided at the ends."""
    kernel = CENTRAL_DIFFERENCE if axis == 1 else CENTRAL_DIFFERENCE.T
    out = cv2.filter2D(field, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    f, d = np.moveaxis(field, axis, 0), np.moveaxis(out, axis, 0)
    d[0], d[-1] = f[1] - f[0], f[-1] - f[-2]
    return out


def unfolded(forward: np.ndarray, folds: np.ndarray | None = None) -> np.ndarray:
    """``forward`` (rows, cols, 2) with its folds relaxed: where the map would compress an area
    below UNFOLD_MIN_AREA (a surface turning out of view, which a 2-D warp cannot hide), the
    field is replaced by its local average, repeatedly, until it no longer does (at most
    UNFOLD_ROUNDS); elsewhere, and in the ``folds`` (rows, cols) bool cells, it is unchanged."""
    out = forward
    for _ in range(UNFOLD_ROUNDS):
        folded = fold_measure(out) < UNFOLD_MIN_AREA
        if folds is not None:
            folded &= ~folds
        if not folded.any():
            break
        near = cv2.dilate(folded.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if folds is not None:
            near &= ~folds
        smooth = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = np.where(near[..., None], smooth, out)
    return out


def _node_range(p0: int, p1: int, step: int) -> tuple[int, int]:
    """Padded node indices [k0, k1) whose step× upsampling covers pixels [p0, p1) with an
    interpolation between two nodes at every pixel (padded index k is node k - 1, at pixel
    (k - 1)·step + (step-1)/2)."""
    half = (step - 1) / 2
    first = int(np.floor((p0 - half) / step))
    last = int(np.ceil((p1 - 1 - half) / step))
    return first + 1, last + 2


def _band_spans(moving: np.ndarray, step: int, width: int, height: int) -> list[Span]:
    """Spans (window pixels) covering the ``moving`` (rows, cols) cells, band by band of
    ``BAND_PX`` rows: per band, the rows and columns from its first moving cell to its last."""
    spans: list[Span] = []
    nodes = max(1, BAND_PX // step)
    for r0 in range(0, moving.shape[0], nodes):
        band = moving[r0:r0 + nodes]
        rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
        if len(cols) == 0:
            continue
        y0, y1 = int(r0 + rows[0]) * step, min(int(r0 + rows[-1] + 1) * step, height)
        x0, x1 = int(cols[0]) * step, min(int(cols[-1] + 1) * step, width)
        if y1 > y0 and x1 > x0:
            spans.append((x0, y0, x1, y1))
    return spans


def _grid_mobility(mobility: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """(rows, cols) float32 mobility sampled at the grid nodes (area-averaged)."""
    h, w = mobility.shape
    step = gx[1] - gx[0] if len(gx) > 1 else 1.0
    blurred = cv2.blur(mobility.astype(np.float32), (int(step) | 1, int(step) | 1))
    xs = np.clip(np.round(gx).astype(int), 0, w - 1)
    ys = np.clip(np.round(gy).astype(int), 0, h - 1)
    return np.ascontiguousarray(blurred[ys][:, xs])


def _barycentric(points: np.ndarray, gx: np.ndarray,
                 gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The corners of the Delaunay triangle of (P, 2) ``points`` around each node of the grid
    ``gx`` × ``gy`` (G = len(gy) · len(gx) nodes, row-major), and the node's barycentric
    weights in it: (3, G) point indices and (3, G) float32 weights, all 0 outside the hull.

    Nodes are located by testing each triangle against the nodes of its bounding box, in
    closed form: SciPy's ``find_simplex`` computes its transforms with threaded LAPACK calls,
    which take seconds instead of milliseconds when the cores are busy (OpenBLAS threads
    waiting for each other under load).
    """
    simplices = delaunay(points)  # (T, 3) point indices
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
    indices = np.zeros((3, len(gx) * len(gy)), np.intp)
    weights = np.zeros((3, len(gx) * len(gy)), np.float32)
    indices[:, node[keep]] = simplices[tri[keep]].T
    weights[:, node[keep]] = bary[keep].T
    return indices, weights


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) int point indices of the Delaunay triangles of (P, 2) ``points`` (OpenCV's
    ``Subdiv2D``: importing SciPy costs 0.2-0.3 s). A point that repeats another is left
    out."""
    # Subdiv2D starts from a triangle around its rectangle: far away, it leaves the points'
    # hull triangulated as a true Delaunay triangulation would
    span = float(np.ptp(points, axis=0).max()) + 1
    lo = np.floor(points.min(axis=0) - FAR_RECT * span)
    side = int(np.ceil((2 * FAR_RECT + 1) * span)) + 2
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), side, side))
    located = {}
    for i, (x, y) in enumerate(np.asarray(points, np.float32)):
        located.setdefault((float(x), float(y)), i)
        subdiv.insert((float(x), float(y)))
    triangles = subdiv.getTriangleList().reshape(-1, 3, 2)
    indices = [[located.get((float(x), float(y)), -1) for x, y in corners] for corners in triangles]
    found = np.asarray(indices, np.int64).reshape(-1, 3)
    return found[(found >= 0).all(axis=1)]  # not the triangles on Subdiv2D's outer corners


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
