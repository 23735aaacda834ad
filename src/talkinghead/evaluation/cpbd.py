"""CPBD: the Cumulative Probability of Blur Detection (Narvekar & Karam, IEEE TIP 2011).

A no-reference sharpness score in [0, 1], higher is sharper, as talking-head papers report it
(SadTalker and others, on HDTF frames). Written here from the paper, with the conventions of
its widely used Python port (``cpbd`` on PyPI), so that the numbers compare:

1. Edges: Sobel's horizontal derivative g (grey levels per pixel), kept where g² exceeds
   twice the RMS of g, thinned to local maxima across rows or columns.
2. Edge blocks: the image is cut into 64 × 64 blocks; a block counts when over 0.2 % of its
   pixels are edges.
3. Edge widths (Marziliano et al. 2002): at each edge pixel whose gradient (central
   differences) lies within 22.5° of the row, the width along the row between the local
   extrema of intensity on either side: 2 px plus the further steps that keep rising (or
   falling) beyond the pixel's two neighbours.
4. Each width w in a block of contrast C (max − min grey level) is compared with the
   just-noticeable blur width (5 px where C ≤ 50, 3 px above): the probability that the blur
   is seen is P = 1 − exp(−(w / w_JNB)^3.6).
5. CPBD is the share of edge pixels, over all edge blocks, whose P rounds to at most 63 %
   (the blur is not noticed).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

BLOCK = 64
EDGE_BLOCK_SHARE = 0.002
BETA = 3.6
NOTICED = 0.635  # P below this rounds to at most 63 %
LOW_CONTRAST = 50
JNB_WIDTH_LOW, JNB_WIDTH_HIGH = 5.0, 3.0
ROW_ANGLE = math.tan(math.radians(22.5))  # |gy| / |gx| up to which an edge is measured along its row
MAX_STEPS = 100  # further steps counted on each side


def cpbd(grey: np.ndarray) -> float:
    """CPBD of an (H, W) grey image (0..255; uint8 or float): a share in [0, 1]; NaN without
    edge blocks (a flat image, or one under 64 px)."""
    grey = np.asarray(grey, np.float64)
    edges = sobel_edges(grey)
    widths = edge_widths(grey, edges)
    seen = []
    for top in range(0, grey.shape[0] - BLOCK + 1, BLOCK):
        for left in range(0, grey.shape[1] - BLOCK + 1, BLOCK):
            block = np.s_[top:top + BLOCK, left:left + BLOCK]
            if edges[block].sum() <= EDGE_BLOCK_SHARE * BLOCK * BLOCK:
                continue
            w = widths[block][widths[block] > 0]
            contrast = int(grey[block].max() - grey[block].min())
            jnb = JNB_WIDTH_LOW if contrast <= LOW_CONTRAST else JNB_WIDTH_HIGH
            seen.append(1.0 - np.exp(-((w / jnb) ** BETA)))
    probabilities = np.concatenate(seen) if seen else np.zeros(0)
    return float(np.mean(probabilities < NOTICED)) if len(probabilities) else float("nan")


def sobel_edges(grey: np.ndarray) -> np.ndarray:
    """(H, W) bool edges of an (H, W) float image: Sobel's horizontal derivative g (normalised
    to grey levels per pixel) with g² over 2·RMS(g), thinned to maxima across rows or columns."""
    strength = (cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 8.0) ** 2
    strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    across_row = (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
    across_column = (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
    return across_row | across_column


def edge_widths(grey: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(H, W) widths in px of the ``edges`` ((H, W) bool) of an (H, W) float image whose
    gradient lies within 22.5° of the row; 0 elsewhere (and in the outer rows and columns)."""
    gy, gx = np.gradient(grey)
    along_row = np.abs(gy) <= ROW_ANGLE * np.abs(gx)
    rising = (gx > 0) & along_row | (gx == 0)  # a zero x-gradient counts as rising, as in the port
    falling = (gx < 0) & along_row
    step = np.sign(np.diff(grey, axis=1))  # (H, W-1): step[:, j] from pixel j to j + 1
    width = np.zeros_like(grey)
    inner = np.zeros_like(edges)
    inner[1:-1, 1:-1] = edges[1:-1, 1:-1]
    for sign, where in ((1.0, rising), (-1.0, falling)):
        same = step == sign
        left = np.zeros_like(grey)
        left[:, 2:] = _run_ending(same)[:, :-1]  # steps ending at x - 1: x-2 → x-1, x-3 → x-2, ...
        right = np.zeros_like(grey)
        right[:, :-2] = _run_ending(same[:, ::-1])[:, ::-1][:, 1:]  # from x + 1: x+1 → x+2, ...
        sides = 2.0 + np.minimum(left, MAX_STEPS) + np.minimum(right, MAX_STEPS)
        width = np.where(inner & where, sides, width)
    return width


def _run_ending(flags: np.ndarray) -> np.ndarray:
    """(H, N) length of the run of True ending at each position of each row of (H, N) bools."""
    count = np.cumsum(flags, axis=1)
    reset = np.maximum.accumulate(np.where(flags, 0, count), axis=1)
    return (count - reset).astype(np.float64)


def video_cpbd(frames: np.ndarray, samples: int = 25) -> float:
    """Mean CPBD of up to ``samples`` evenly spaced frames of (T, H, W, 3) uint8 RGB video."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int))
    scores = [cpbd(cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)) for t in picks]
    scores = [s for s in scores if math.isfinite(s)]
    return float(np.mean(scores)) if scores else float("nan")
