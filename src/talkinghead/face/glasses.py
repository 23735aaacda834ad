"""The top bars of a glasses frame, found in the photo so that a blink leaves them still.

A blink carries the lid skin down with the lid (``model._lid_skin_follow``); a frame lying on
that skin would bend with it. Above each eye, between the upper lid and the brow, the bar's
lower edge is a long, sharp step from light skin below to a dark band above that reaches
past the eye's outer corner, at about the same height over both eyes. Eye make-up, lid
creases and brows give weaker, shorter or lopsided edges; thin wire frames and lid creases
give a line, not a band (they are left to bend slightly with the lid).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import regions as R

ALIGNED_PX = 100           # pixels per IOD of the eye-aligned picture that is searched
ALIGNED_BOX = (-1.3, -0.9, 1.3, 0.6)  # its extent around the eyes' midpoint, IOD (x right, y down)
SPAN_IOD = (0.15, 0.2)     # searched columns: from this far off the midline to this far past the outer corner
MIN_STEP = 22.0            # median L* step (0–255, per pixel) along the edge, over both eyes ...
STRONG_STEP = 12.0         # ... and the share of its columns with at least this step ...
MIN_SHARE = 0.65
GAP_IOD = (0.07, 0.2)      # ... the edge's mean height above the upper lid ...
MAX_GAP_DIFFERENCE_IOD = 0.06  # ... and how much that may differ between the eyes
MIN_BAR_CONTRAST = 40.0    # ... and how much darker (L*) a bar is just above its edge than below ...
BAR_ROWS = 4               # ... over this many rows of the aligned picture (0.04 IOD) on either side
EDGE_SMOOTH_COLS = 1.5     # the traced edge is smoothed along itself over this many columns (sigma)
# upper lid and the brow's lower contour of each eye, left first
EYES = ((R.LEFT_UPPER_LID, R.LEFT_BROW[:5]), (R.RIGHT_UPPER_LID, R.RIGHT_BROW[:5]))


@dataclass(frozen=True)
class _Edge:
    path: np.ndarray     # (K, 2) aligned pixels
    step: np.ndarray     # (K,) L* step at each point
    gap: float           # mean height above the lid, IOD


def find_rims(image: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The lower edges of a glasses frame's top bars in an (H, W, 3) uint8 RGB ``image`` with
    its (478, ≥2) pixel ``mesh``: a (K, 2) float32 polyline in image pixels, x increasing, per
    eye, left eye first (the order of the ``blink_left``, ``blink_right`` channels). Above an
    edge, the photo shows the frame. None when no bar lies over both eyes."""
    luma, to_image = _eye_aligned(image, mesh)
    aligned = np.linalg.solve(to_image[:, :2], (mesh[:, :2] - to_image[:, 2]).T).T
    step = cv2.Sobel(cv2.GaussianBlur(luma, (0, 0), 1.0), cv2.CV_32F, 0, 1, ksize=3) / 8
    edges = [_trace(np.clip(step, 0, None), aligned[lid], aligned[brow]) for lid, brow in EYES]
    if any(e is None for e in edges):
        return None
    steps = np.concatenate([e.step for e in edges])
    gaps = [e.gap for e in edges]
    if (np.median(steps) < MIN_STEP or min((e.step >= STRONG_STEP).mean() for e in edges) < MIN_SHARE
            or not GAP_IOD[0] <= min(gaps) <= max(gaps) <= GAP_IOD[1]
            or abs(gaps[0] - gaps[1]) > MAX_GAP_DIFFERENCE_IOD
            or min(_bar_contrast(luma, e.path) for e in edges) < MIN_BAR_CONTRAST):
        return None
    left, right = ((e.path @ to_image[:, :2].T + to_image[:, 2]).astype(np.float32) for e in edges)
    return left, right


def _bar_contrast(luma: np.ndarray, path: np.ndarray) -> float:
    """How much darker (L*, 0-255) the BAR_ROWS just above an edge ((K, 2) aligned ``path``)
    are than the rows just below it: a bar is a dark band, a wire or a lid crease a line."""
    cols, rows = path[:, 0].astype(int), np.round(path[:, 1]).astype(int)

    def mean_over(offsets: range) -> float:
        return float(np.mean([luma[np.clip(rows + d, 0, luma.shape[0] - 1), cols] for d in offsets]))

    return mean_over(range(2, 2 + BAR_ROWS)) - mean_over(range(-1 - BAR_ROWS, -1))


def _eye_aligned(image: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) float32 L* of the eye region, eyes level at ALIGNED_PX per IOD, and the (2, 3)
    affine map from its pixels to the image's (only the region is converted)."""
    right, left = (c[:2] for c in R.eye_centers(mesh))
    across = left - right
    iod = float(np.linalg.norm(across))
    ex = across / iod
    ey = np.array([-ex[1], ex[0]])
    x0, y0, x1, y1 = ALIGNED_BOX
    scale = iod / ALIGNED_PX
    corner = (left + right) / 2 + iod * (x0 * ex + y0 * ey)
    to_image = np.column_stack([ex * scale, ey * scale, corner])
    size = (int((x1 - x0) * ALIGNED_PX), int((y1 - y0) * ALIGNED_PX))
    corners = np.array([[0, 0, 1], [size[0], 0, 1], [0, size[1], 1], [size[0], size[1], 1]]) @ to_image.T
    lo = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, None)
    hi = np.ceil(corners.max(axis=0)).astype(int) + 3
    to_image[:, 2] -= lo
    luma = cv2.cvtColor(image[lo[1]:hi[1], lo[0]:hi[0]], cv2.COLOR_RGB2LAB)[..., 0]
    if scale > 1.5:
        luma = cv2.GaussianBlur(luma, (0, 0), 0.5 * scale)
    aligned = cv2.warpAffine(luma, to_image, size, flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    to_image[:, 2] += lo
    return aligned.astype(np.float32), to_image


def _trace(step: np.ndarray, lid: np.ndarray, brow: np.ndarray) -> _Edge | None:
    """The strongest edge between the (K, 2) aligned ``lid`` and ``brow`` contours of one eye,
    one row per column (moving at most a row between columns), from SPAN_IOD[0] off the
    midline to SPAN_IOD[1] past the outer corner; ``step`` (h, w) is the upward L* drop.
    None when that span lies outside the aligned picture."""
    middle = -ALIGNED_BOX[0] * ALIGNED_PX
    side = np.sign(lid[:, 0].mean() - middle)
    outer = lid[np.argmax(side * (lid[:, 0] - middle)), 0]
    ends = sorted([middle + side * SPAN_IOD[0] * ALIGNED_PX, outer + side * SPAN_IOD[1] * ALIGNED_PX])
    h, w = step.shape
    cols = np.arange(max(int(ends[0]), 0), min(int(ends[1]), w))
    if len(cols) < 2:
        return None
    lid_y = np.interp(cols, *lid[np.argsort(lid[:, 0])].T)
    top = np.clip(np.floor(np.interp(cols, *brow[np.argsort(brow[:, 0])].T) + 3), 0, h - 1).astype(int)
    bottom = np.clip(np.ceil(lid_y - 1), top + 1, h).astype(int)
    rows = _best_rows(step[:, cols], top, bottom)
    values = step[rows, cols]
    smooth = _subpixel(step, rows, cols)
    return _Edge(np.column_stack([cols, smooth]).astype(np.float64), values,
                 float(np.mean(lid_y - rows)) / ALIGNED_PX)


def _subpixel(step: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(W,) float rows of the edge through (``rows``, ``cols``) of ``step``: each at the peak
    of a parabola through its row and the two beside it, then smoothed along the edge over
    EDGE_SMOOTH_COLS (the path moves in whole rows, a staircase once enlarged)."""
    h = step.shape[0]
    above, at, below = (step[np.clip(rows + d, 0, h - 1), cols] for d in (-1, 0, 1))
    curve = above - 2 * at + below
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curve < 0, 0.5 * (above - below) / curve, 0.0)
    refined = rows + np.clip(np.nan_to_num(shift), -0.5, 0.5)
    return cv2.GaussianBlur(refined[None], (0, 0), sigmaX=EDGE_SMOOTH_COLS, sigmaY=0.1,
                            borderType=cv2.BORDER_REFLECT)[0]


def _best_rows(step: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """(W,) rows of the path through (H, W) ``step`` with the largest sum, one row per column
    within [top, bottom), moving at most one row between neighbouring columns."""
    h, w = step.shape
    rows = np.arange(h)
    allowed = (rows[:, None] >= top) & (rows[:, None] < bottom)
    total = np.where(allowed[:, 0], step[:, 0], -np.inf)
    came = np.zeros((h, w), int)
    for c in range(1, w):
        options = np.stack([np.r_[-np.inf, total[:-1]], total, np.r_[total[1:], -np.inf]])
        pick = np.argmax(options, axis=0)
        came[:, c] = rows + pick - 1
        total = np.where(allowed[:, c], options[pick, rows] + step[:, c], -np.inf)
    path = np.zeros(w, int)
    path[-1] = int(np.argmax(total))
    for c in range(w - 1, 0, -1):
        path[c - 1] = came[path[c], c]
    return path
