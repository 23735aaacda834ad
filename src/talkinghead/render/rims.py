"""Glasses rims during a blink: the frame stays where it is and occludes the closing lid.

``face.glasses`` finds the lower edge of each top bar in the photo. While a lid closes, the
renderer shows the photo above that edge as without the blink (``Rim.held``), and where the
lid's warp would pull the frame itself down it paints the skin under the rim instead
(``under_rim``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .warp import BackwardMap

RIM_EDGE_IOD = 0.015  # a glasses rim's blurred edge reaches this far below its traced lower edge
RIM_SKIN = (0.15, 0.75)  # a lid pulls down under the rim the colour of the skin this far from rim to lid ...
RIM_SKIN_QUANTILE = 45  # ... of this luma percentile there (lens glints are bright)
RIM_FADE_IOD = 0.05  # the rim is held still up to this far from either end of its edge


@dataclass(frozen=True)
class Rim:
    """A glasses rim over one eye: its ``bottom`` ((K, 2) window pixels, x increasing: the
    traced lower edge plus RIM_EDGE_IOD of blur), the (K, 3) float32 ``colour`` of the skin
    under it, the ``fade`` (px) over which its hold ends at either end, and the photo's
    ``grain`` ((n, n) relative brightness, ``mouth.photo_grain``, tiled over the window as on
    the painted mouth; None: none) laid over that skin."""

    bottom: np.ndarray
    colour: np.ndarray
    fade: float
    grain: np.ndarray | None = None

    @classmethod
    def under(cls, window: np.ndarray, edge: np.ndarray, lid: np.ndarray, iod: float,
              grain: np.ndarray | None = None) -> "Rim":
        """The rim with lower ``edge`` over the (K, 2) upper ``lid`` in the (h, w, 3) uint8 photo
        ``window``: the skin colour per column is that of the RIM_SKIN_QUANTILE luma percentile
        between rim and lid (RIM_SKIN of the way), smoothed along the rim."""
        gap = np.interp(edge[:, 0], *lid[np.argsort(lid[:, 0])].T) - edge[:, 1]
        below = np.linspace(*RIM_SKIN, 11)[:, None] * np.maximum(gap, 0)[None]
        xy = np.stack(np.broadcast_arrays(edge[None, :, 0], edge[None, :, 1] + below), axis=-1)
        band = cv2.remap(window, xy.astype(np.float32), None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        luma = band @ np.float32([0.299, 0.587, 0.114])
        rank = np.argsort(luma, axis=0)[int(round(RIM_SKIN_QUANTILE / 100 * (len(band) - 1)))]
        skin = band[rank, np.arange(band.shape[1])]
        smooth = cv2.GaussianBlur(skin[None], (0, 0), sigmaX=0.03 * iod, sigmaY=0.1,
                                  borderType=cv2.BORDER_REPLICATE)[0]
        return cls(edge + [0, RIM_EDGE_IOD * iod], smooth, RIM_FADE_IOD * iod, grain)

    def _line(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For (h, w) window x: the rim's bottom there, and how far inside its span x lies, in
        units of ``fade`` (≤ 0 outside)."""
        ends = self.bottom[[0, -1], 0]
        inside = np.minimum(x - ends[0], ends[1] - x) / max(self.fade, 1e-3)
        return np.interp(x, *self.bottom.T), inside

    def on(self, xy: np.ndarray, span: bool = True) -> np.ndarray:
        """(h, w) bool: which (h, w, 2) window positions ``xy`` lie on the rim: above its lowest
        pixels, within its span (or anywhere along x without ``span``)."""
        bottom, inside = self._line(xy[..., 0])
        return (xy[..., 1] < bottom) & ((inside > 0) if span else True)

    def held(self, xy: np.ndarray) -> np.ndarray:
        """(h, w) float32: 1 where (h, w, 2) window positions ``xy`` lie on the rim, fading to 0
        a pixel below it and towards the ends of its span."""
        bottom, inside = self._line(xy[..., 0])
        return (np.clip(bottom + 1 - xy[..., 1], 0, 1) * np.clip(inside, 0, 1)).astype(np.float32)

    def skin(self, x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(n, 3) float32 skin colour under the rim at (n,) window x, with the grain of the
        frame pixels at (n,) window ``rows``, ``cols``."""
        colour = np.stack([np.interp(x, self.bottom[:, 0], c) for c in self.colour.T], axis=-1)
        if self.grain is None:
            return colour
        n = self.grain.shape[0]
        grain = self.grain[rows % n, cols % n]
        return colour * (1 + grain[:, None])


def under_rim(colours: np.ndarray, xy: np.ndarray, rim: Rim | None, at: tuple[int, int],
              keep: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 3) float32 ``colours`` of the window pixels from ``at`` (x, y) on, fetched at
    (h, w, 2) window positions ``xy``: those fetched from a glasses ``rim`` (except where (h, w)
    bool ``keep``) painted over, in place, with the skin under it. A closing lid pulls skin down
    from under the frame, never the frame."""
    if rim is not None:
        pulled = rim.on(xy) if keep is None else rim.on(xy) & ~keep
        if pulled.any():
            rows, cols = np.nonzero(pulled)
            colours[pulled] = rim.skin(xy[..., 0][pulled], rows + at[1], cols + at[0])
    return colours


def frame_under_rim(patch: np.ndarray, backward: BackwardMap, eye: BackwardMap,
                    rim: Rim) -> None:
    """``under_rim`` for the (h, w, 3) float32 ``patch`` of the frame in the ``eye``'s box,
    as the frame's warp ``backward`` fetched it, where the eye's open-lid warp (``eye.xy``)
    fetches from below the rim (above it, the open-lid frame is shown)."""
    bx0, by0, bx1, by1 = backward.box
    box = eye.box
    x0, y0, x1, y1 = max(box[0], bx0), max(box[1], by0), min(box[2], bx1), min(box[3], by1)
    if x1 > x0 and y1 > y0:
        inner = (slice(y0 - box[1], y1 - box[1]), slice(x0 - box[0], x1 - box[0]))
        under_rim(patch[inner], backward.xy[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0], rim, (x0, y0),
                  keep=rim.on(eye.xy[inner], span=False))
