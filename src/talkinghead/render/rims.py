"""Glasses rims during a blink: the frame stays where it is and occludes the closing lid.

``face.glasses`` finds the lower edge of each top bar in the photo. While a lid closes, the
renderer shows the photo above that edge as without the blink (``RimHold``), and where the
lid's warp would pull the frame itself down it paints the skin under the rim instead
(``under_rim``). Only the pixels that the blink moves are touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .mouth import LUMA

RIM_EDGE_IOD = 0.015  # a glasses rim's blurred edge reaches this far below its traced lower edge
RIM_SKIN = (0.15, 0.75)  # a lid pulls down under the rim the skin this far from rim to lid ...
RIM_SKIN_ROWS = 11       # ... sampled in this many rows, mirrored back and forth behind the bar,
RIM_GLINT_QUANTILE = 75  # ... each column no brighter than this luma percentile (lens glints)
RIM_FADE_IOD = 0.05  # the rim is held still up to this far from either end of its edge
MOVED_PX = 0.2  # pixels that the blink moves less than this are left as the frame's warp made them


@dataclass(frozen=True)
class Rim:
    """A glasses rim over one eye: its ``bottom`` ((K, 2) window pixels, x increasing: the
    traced lower edge plus RIM_EDGE_IOD of blur), the skin under it (``skin_rows``:
    (RIM_SKIN_ROWS, K, 3) float32, top row first, ``row_px`` apart in each column: (K,) px) and
    the ``fade`` (px) over which its hold ends at either end."""

    bottom: np.ndarray
    skin_rows: np.ndarray
    row_px: np.ndarray
    fade: float

    @classmethod
    def under(cls, window: np.ndarray, edge: np.ndarray, lid: np.ndarray, iod: float) -> "Rim":
        """The rim with lower ``edge`` over the (K, 2) upper ``lid`` in the (h, w, 3) uint8 photo
        ``window``; its skin is the photo's between rim and lid (RIM_SKIN of the way), with
        glints toned down to the column's RIM_GLINT_QUANTILE luma percentile."""
        gap = np.maximum(np.interp(edge[:, 0], *lid[np.argsort(lid[:, 0])].T) - edge[:, 1], 0)
        below = np.linspace(*RIM_SKIN, RIM_SKIN_ROWS)[:, None] * gap[None]
        xy = np.stack(np.broadcast_arrays(edge[None, :, 0], edge[None, :, 1] + below), axis=-1)
        band = cv2.remap(window, xy.astype(np.float32), None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        luma = band @ LUMA
        ceiling = np.percentile(luma, RIM_GLINT_QUANTILE, axis=0)
        band *= np.minimum(1.0, ceiling / np.maximum(luma, 1e-3))[..., None]
        row_px = np.maximum((RIM_SKIN[1] - RIM_SKIN[0]) * gap / (RIM_SKIN_ROWS - 1), 0.5)
        return cls(edge + [0, RIM_EDGE_IOD * iod], band, row_px.astype(np.float32),
                   RIM_FADE_IOD * iod)

    def locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For (n, 2) window positions: (n,) how far above the rim's bottom each lies, px (> 0:
        on the rim), and (n,) how far inside its span each x lies, in units of ``fade`` (≤ 0
        outside)."""
        ends = self.bottom[[0, -1], 0]
        inside = np.minimum(points[:, 0] - ends[0], ends[1] - points[:, 0]) / max(self.fade, 1e-3)
        return np.interp(points[:, 0], *self.bottom.T) - points[:, 1], inside

    def skin(self, points: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """(n, 3) float32 skin to show for (n, 2) window positions on the rim, ``depth`` (n,)
        px above its bottom: the skin under the rim at the same x, its rows mirrored back and
        forth upwards from the bottom, so the skin's own texture continues behind the bar."""
        if len(points) == 0:
            return np.zeros((0, 3), np.float32)
        col = np.interp(points[:, 0], self.bottom[:, 0], np.arange(len(self.bottom)))
        step = depth / np.interp(col, np.arange(len(self.row_px)), self.row_px)
        last = RIM_SKIN_ROWS - 1
        row = np.abs((step + last) % (2 * last) - last)
        maps = [np.asarray(a, np.float32).reshape(-1, 1) for a in (col, row)]
        return cv2.remap(self.skin_rows, *maps, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)


def under_rim(colours: np.ndarray, xy: np.ndarray, rim: Rim | None, at: tuple[int, int],
              where: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 ``colours`` of the window pixels from ``at`` (x, y) on, fetched at
    (h, w, 2) window positions ``xy``: where (h, w) bool ``where``, those fetched from a glasses
    ``rim`` are painted over, in place, with the skin under it. A closing lid pulls skin down
    from under the frame, never the frame."""
    if rim is not None:
        rows, cols = np.nonzero(where)
        points = xy[rows, cols]
        depth, inside = rim.locate(points)
        pulled = (depth > 0) & (inside > 0)
        if pulled.any():
            rows, cols = rows[pulled], cols[pulled]
            colours[rows, cols] = rim.skin(points[pulled], depth[pulled])
    return colours


@dataclass(frozen=True)
class RimHold:
    """One eye's box in one blinking frame, for a glasses rim: its pixels that the blink moves
    ((n,) ``rows``, ``cols`` in the box), where the frame without the blink fetches them
    ((n, 2) ``still``, window pixels) and how much the rim holds them there (``weight``: 1 on
    the rim, fading to 0 a pixel below it and towards the ends of its span), and
    the skin (``skin``, (p, 3)) painted on those (``pulled``, (n,) bool) that the blink's warp
    fetches from the rim itself."""

    rows: np.ndarray
    cols: np.ndarray
    still: np.ndarray
    weight: np.ndarray
    pulled: np.ndarray
    skin: np.ndarray

    @classmethod
    def of(cls, rim: Rim, frame_xy: np.ndarray, still_xy: np.ndarray,
           at: tuple[int, int]) -> "RimHold":
        """The hold for (h, w, 2) window positions where the blinking frame (``frame_xy``) and
        the frame without the blink (``still_xy``) fetch the box's pixels from ``at`` (x, y) on."""
        rows, cols = np.nonzero(np.abs(frame_xy - still_xy).max(axis=-1) > MOVED_PX)
        moving, still = frame_xy[rows, cols], still_xy[rows, cols]
        depth, inside = rim.locate(moving)
        still_depth, still_inside = rim.locate(still)
        pulled = (depth > 0) & (inside > 0) & (still_depth <= 0)
        skin = rim.skin(moving[pulled], depth[pulled])
        weight = np.clip(still_depth + 1, 0, 1) * np.clip(still_inside, 0, 1)
        return cls(rows, cols, still, weight.astype(np.float32), pulled, skin)

    def pull(self, patch: np.ndarray) -> None:
        """Paint the skin over the pulled pixels of the box's (h, w, 3) float32 ``patch``."""
        patch[self.rows[self.pulled], self.cols[self.pulled]] = self.skin

    def hold(self, patch: np.ndarray, fetch: Callable[[np.ndarray], np.ndarray]) -> None:
        """Show the rim in the box's (h, w, 3) float32 ``patch`` as without the blink;
        ``fetch`` samples the photo at (n, 2) window positions, (n, 3) float32."""
        if len(self.rows):
            at = (self.rows, self.cols)
            patch[at] += (fetch(self.still) - patch[at]) * self.weight[:, None]
