"""Mouth interior: dark cavity and shaded teeth where the lips part beyond the source photo."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUBPIXEL_BITS = 3
EDGE_BLUR = 0.004  # lip edge softness in large renders, IOD (a 1 px edge looks cut out there)
TEETH_COLOR = np.array([242.0, 234.0, 216.0], dtype=np.float32)
TONGUE_COLOR = np.array([196.0, 98.0, 104.0], dtype=np.float32)  # under skin of mean level 170
SEEN_GAP_IOD = 0.025   # the photo's lips part at least this much: its interior colours are used
SEEN_MIN_PIXELS = 24
OWN_EDGE_IOD = 0.015  # the photo's own teeth halves fade into the painted cavity over this, IOD
SPLIT_RANGE = (0.3, 0.8)  # where the photo's upper teeth may meet the lower (share of its opening)
TEETH_LEVEL = 90.0         # the photo's brightest interior quarter is teeth if this bright, ...
SHADED_TEETH_LEVEL = 40.0  # ... or, in shadow, this bright and three times the cavity's level
SEEN_CAVITY_MAX = 80.0  # the darkest quarter of the photo's interior is its cavity if this dark
CAVITY_SATURATION = 0.6  # ... with at most this saturation ((max - min) / max of its RGB)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
REBLUR_PX = 1.0
SHARP_SIGMA_PX = 0.6  # the blur of a sharp photo's edges (pixel footprint and optics), px
GRAIN_TILE = 128       # px, side of the repeating grain texture laid over the painted interior
GRAIN_MIN, GRAIN_MAX = 0.004, 0.03  # relative grain below which none is added, and its cap
CORNER_REACH = 0.6     # an open mouth's painted corners reach this share of the way to the commissures
CORNER_OPEN_IOD = 0.1  # ... once the lips are this far apart (IOD); less at smaller openings
TONGUE_FROM_IOD = 0.05  # the tongue shows above the lower lip once the lips are this far apart,
TONGUE_SHARE = 0.5      # ... rising by this share of the further opening,
TONGUE_IOD = 0.13       # ... up to this height (IOD),
TONGUE_HALF_WIDTH = 0.85  # ... across this share of the opening's half-width


@dataclass(frozen=True)
class OwnTeeth:
    """The photo's own mouth interior, shown at any opening instead of painted teeth:
    ``pixels`` (h, w, 3) uint8, a crop of the photo around its opening; ``upper``, ``lower``
    (K, 2) its inner-lip contours in crop pixels, corner to corner, paired; ``split``: where
    the upper teeth meet the lower, as a share of the way from the upper lip to the lower."""

    pixels: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    split: float = 0.5

    @classmethod
    def of(cls, image: np.ndarray, upper: np.ndarray, lower: np.ndarray, margin: int = 4) -> OwnTeeth:
        """The crop of a (H, W, 3) uint8 photo around its opening between the inner lips
        ``upper``, ``lower`` (K, 2) photo pixels, with ``margin`` px to spare, split where
        the middle half of the opening is darkest across (the line where the rows meet)."""
        both = np.concatenate([upper, lower])
        x0, y0 = np.maximum(np.floor(both.min(axis=0)).astype(int) - margin, 0)
        x1, y1 = np.ceil(both.max(axis=0)).astype(int) + margin + 1
        corner = np.array([x0, y0], np.float32)
        pixels = np.ascontiguousarray(image[y0:y1, x0:x1])
        upper, lower = upper - corner, lower - corner
        return cls(pixels, upper, lower, _darkest_share(pixels, upper, lower))


def _darkest_share(pixels: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
    """The share v in [SPLIT_RANGE] of the way from the ``upper`` to the ``lower`` lip (K, 2
    pixels of the (h, w, 3) ``pixels``) where the middle half of the columns is darkest."""
    xs = np.linspace(*np.percentile(upper[:, 0], (25, 75)), 16, dtype=np.float32)
    top, bottom = np.interp(xs, upper[:, 0], upper[:, 1]), np.interp(xs, lower[:, 0], lower[:, 1])
    shares = np.linspace(*SPLIT_RANGE, 21, dtype=np.float32)
    ys = (top + shares[:, None] * (bottom - top)).astype(np.float32)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rows = cv2.remap(grey, np.broadcast_to(xs, ys.shape).astype(np.float32), ys, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
    return float(shares[np.argmin(rows.mean(axis=1))])


@dataclass(frozen=True)
class MouthLook:
    """Colours sampled from the photo. ``lip``, ``skin``: (3,) float32 RGB 0..255; ``iod``: px.
    ``seen_teeth``, ``seen_cavity``: (3,) colours of the photo's own mouth interior when its
    lips are parted, else None. ``blur``: px (Gaussian sigma) by which the painted interior is
    softened to match the photo's own sharpness around the mouth (``added_blur``). ``own_teeth``:
    the photo's own teeth (``OwnTeeth``), shown instead of painted ones; None: painted.
    ``grain``: (GRAIN_TILE, GRAIN_TILE) float32 relative brightness texture laid over the
    painted interior, so that it has the photo's film grain or noise (``photo_grain``)."""

    lip: np.ndarray
    skin: np.ndarray
    iod: float
    seen_teeth: np.ndarray | None = None
    seen_cavity: np.ndarray | None = None
    blur: float = 0.0
    own_teeth: OwnTeeth | None = None
    grain: np.ndarray | None = None

    @property
    def cavity(self) -> np.ndarray:
        if self.seen_cavity is not None:
            return self.seen_cavity
        return self.lip * 0.3 + np.array([10.0, 0.0, 0.0], dtype=np.float32)

    @property
    def teeth(self) -> np.ndarray:
        if self.seen_teeth is not None:
            return self.seen_teeth
        light = float(np.clip(self.skin.mean() / 160.0, 0.55, 1.0))
        return (TEETH_COLOR * 0.8 + self.skin * 0.2) * light


def seen_interior(image: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                  iod: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(teeth, cavity) colours (3,) float32 of the photo's mouth interior between the inner
    lips ``upper``, ``lower`` (K, 2) pixels: the mean of its brightest and of its darkest
    quarter; (None, None) when the gap is too thin to hold both. Teeth are None when nothing
    there looks like teeth (pale, and bright or in shadow far brighter than the cavity), the
    cavity when nothing is dark (a smile's interior all teeth)."""
    if float(np.median(lower[:, 1] - upper[:, 1])) < SEEN_GAP_IOD * iod:
        return None, None
    polygon = np.concatenate([upper, lower[-2:0:-1]])
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    patch = image[y0:y1, x0:x1].astype(np.float32)
    if patch.size == 0:
        return None, None
    inside = polygon_mask(polygon - [x0, y0], patch.shape[:2]) > 0.99
    pixels = patch[inside]
    if len(pixels) < SEEN_MIN_PIXELS:
        return None, None
    order = np.argsort(pixels.mean(axis=1))
    quarter = max(1, len(order) // 4)
    dark, bright = pixels[order[:quarter]].mean(axis=0), pixels[order[-quarter:]].mean(axis=0)
    saturation = float(bright.max() - bright.min()) / max(float(bright.max()), 1.0)
    cavity = muted(dark.astype(np.float32)) if dark.mean() <= SEEN_CAVITY_MAX else None
    pale_enough = min(TEETH_LEVEL, max(SHADED_TEETH_LEVEL, 3 * float(dark.mean())))
    if bright.mean() < pale_enough or saturation > 0.45:
        return None, cavity
    return bright.astype(np.float32), cavity


def muted(colour: np.ndarray, saturation: float = CAVITY_SATURATION) -> np.ndarray:
    """An RGB ``colour`` (3,) mixed towards its own grey (luma) until its saturation, (max -
    min) / max, is at most ``saturation``. The darkest pixels of a thin opening between red
    lips are the lips' shadowed inner edges, far redder than the mouth behind them."""
    grey = float(colour @ LUMA)
    d = colour - grey
    spread = float(d.max() - d.min())
    room = spread - saturation * float(d.max())  # k·room = saturation·grey at the limit
    k = 1.0 if room <= 0 else min(1.0, saturation * grey / room)
    return (grey + k * d).astype(np.float32)


def added_blur(gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Gaussian sigma, px, by which the (H, W) grey photo inside ``box`` (x0, y0, x1, y1) is
    softer than a sharp photo (SHARP_SIGMA_PX): its own sigma from how much of its gradient
    energy survives a further blur of REBLUR_PX (a step edge blurred by s keeps
    s / sqrt(s² + r²) of it), 0 for a sharp photo."""
    x0, y0, x1, y1 = box
    patch = np.asarray(gray[max(y0, 0):y1, max(x0, 0):x1], np.float32)
    if min(patch.shape) < 8:
        return 0.0
    kept = min(_gradient_energy(cv2.GaussianBlur(patch, (0, 0), REBLUR_PX))
               / max(_gradient_energy(patch), 1e-6), 0.99)
    sigma = REBLUR_PX * kept / np.sqrt(1 - kept * kept)
    return float(np.sqrt(max(sigma * sigma - SHARP_SIGMA_PX ** 2, 0.0)))


def photo_grain(gray: np.ndarray, box: tuple[int, int, int, int], scale: float,
                seed: int = 0) -> np.ndarray | None:
    """(GRAIN_TILE, GRAIN_TILE) float32 texture of relative brightness changes with the grain
    of the (H, W) grey photo inside ``box`` (x0, y0, x1, y1): seeded Gaussian noise whose
    grains are ``scale`` px (the photo's enlargement, 1 px at least), as strong relative to the
    photo's brightness as its fine texture (``_fine_level``, at most GRAIN_MAX); None where it
    has next to none."""
    x0, y0, x1, y1 = box
    patch = np.asarray(gray[max(y0, 0):y1, max(x0, 0):x1], np.float32)
    if min(patch.shape) < 16:
        return None
    level = min(_fine_level(patch) / max(float(patch.mean()), 1.0), GRAIN_MAX)
    if level < GRAIN_MIN:
        return None
    small = max(2, round(GRAIN_TILE / max(scale, 1.0)))
    noise = np.random.default_rng(seed).standard_normal((small, small)).astype(np.float32)
    if small < GRAIN_TILE:  # enlarged as the photo was, wrapping round so that the tile repeats
        wrapped = np.pad(noise, 2, mode="wrap")
        at = (np.arange(GRAIN_TILE, dtype=np.float32) + 0.5) * small / GRAIN_TILE - 0.5 + 2
        noise = cv2.remap(wrapped, *np.meshgrid(at, at), cv2.INTER_CUBIC)
    texture = noise - noise.mean()
    return texture * np.float32(level / max(_fine_level(texture), 1e-6))


def _fine_level(image: np.ndarray, quantile: float = 10) -> float:
    """Grey levels of fine texture in a (h, w) float32 picture: the root mean square of what
    a 1 px Gaussian blur takes out of it, over 7 × 7 px blocks, at the blocks' ``quantile``
    (%) (its smooth parts: grain and noise, not wrinkles and edges)."""
    fine = image - cv2.GaussianBlur(image, (0, 0), 1.0)
    power = cv2.blur(fine * fine, (7, 7), borderType=cv2.BORDER_REFLECT)[3:-3, 3:-3]
    return float(np.sqrt(np.percentile(power, quantile)))


def _gradient_energy(image: np.ndarray) -> float:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return float((gx * gx + gy * gy)[2:-2, 2:-2].mean())


def paint_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, look: MouthLook,
                opacity: float = 1.0) -> None:
    """Paint the opening between the inner lips into ``frame`` (H, W, 3) uint8, in place.

    ``upper``, ``lower``: (K, 2) inner-lip contours in frame pixels, corner to corner, paired;
    ``opacity`` in [0, 1] of the painted interior over what the warp put there.
    """
    gap = lower[:, 1] - upper[:, 1]
    if gap.max() < 0.6 or opacity <= 0:
        return
    polygon = np.concatenate([upper, lower[-2:0:-1]])
    edge = float(np.hypot(EDGE_BLUR * look.iod if look.iod > 150 else 0.0, look.blur))
    margin = 2 + int(np.ceil(3 * edge))
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + margin + 1
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = polygon_mask(polygon - [x0, y0], (y1 - y0, x1 - x0))
    if edge > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), edge)
    upper, lower = upper - [x0, y0], lower - [x0, y0]
    interior = _interior(upper, lower, (y1 - y0, x1 - x0), look)
    if look.blur > 0:
        interior = cv2.GaussianBlur(interior, (0, 0), look.blur)
    if look.grain is not None:
        interior *= 1 + _tiled(look.grain, x0, y0, x1, y1)[..., None]
    if look.own_teeth is not None:
        interior = _with_own_teeth(interior, upper, lower, look.own_teeth, look.iod)
    mask *= opacity
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (patch + (interior - patch) * mask[..., None]).astype(np.uint8)


def _tiled(tile: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The (y1 - y0, x1 - x0) cut at frame pixels [x0, x1) × [y0, y1) of a (n, n) ``tile``
    repeated over the whole frame (the texture stays put in the frame: it never flickers)."""
    n = tile.shape[0]
    return tile[np.arange(y0, y1)[:, None] % n, np.arange(x0, x1)[None, :] % n]


def reach_corners(upper: np.ndarray, lower: np.ndarray, commissures: np.ndarray,
                  iod: float) -> tuple[np.ndarray, np.ndarray]:
    """The inner-lip contours ``upper``, ``lower`` (K, 2) pixels with their shared end points
    moved towards the mouth's ``commissures`` (2, 2), the outer lip corners: up to CORNER_REACH
    of the way as the lips part up to CORNER_OPEN_IOD. The face mesh's inner corners often stop
    short of the photo's own lip line, which an opening jaw would otherwise stretch into dark
    slivers beside the painted opening."""
    opening = float(np.max(lower[:, 1] - upper[:, 1], initial=0.0))
    share = CORNER_REACH * float(np.clip(opening / (CORNER_OPEN_IOD * iod), 0.0, 1.0))
    upper, lower = upper.copy(), lower.copy()
    for end, commissure in zip((0, -1), commissures):
        corner = upper[end] + share * (commissure - upper[end])
        upper[end] = lower[end] = corner
    return upper, lower


def polygon_mask(polygon: np.ndarray, shape: tuple[int, int], inset: float = 0.0) -> np.ndarray:
    """Anti-aliased (h, w) float32 coverage of a polygon given in pixel coordinates, shrunk by
    ``inset`` px."""
    mask = np.zeros(shape, dtype=np.uint8)
    pts = np.round(polygon * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    soft = mask.astype(np.float32) / 255.0
    if inset > 0:
        soft = np.clip((cv2.GaussianBlur(soft, (0, 0), inset) - 0.5) * 2 + 0.5, 0, 1)
    return soft


def between_curves(upper: np.ndarray, lower: np.ndarray, shape: tuple[int, int],
                   inset: float = 0.0) -> np.ndarray:
    """(h, w) float32 coverage of the region between an ``upper`` and a ``lower`` curve, each
    (K, 2) pixel points from one shared corner to the other (``polygon_mask`` of it), faded
    out in columns where the curves are less than a pixel apart: where they meet it covers
    nothing, not the anti-aliased outline that a polygon of no area still draws."""
    mask = polygon_mask(np.concatenate([upper, lower[-2:0:-1]]), shape, inset)
    upper, lower = upper[np.argsort(upper[:, 0])], lower[np.argsort(lower[:, 0])]
    xs = np.arange(shape[1], dtype=np.float32)
    gap = np.interp(xs, lower[:, 0], lower[:, 1]) - np.interp(xs, upper[:, 0], upper[:, 1])
    return mask * np.clip(gap, 0, 1).astype(np.float32)[None, :]


def _with_own_teeth(picture: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                     own: OwnTeeth, iod: float) -> np.ndarray:
    """The (h, w, 3) float32 ``picture`` of an opening between the inner lips ``upper``,
    ``lower`` (K, 2 patch pixels) with the photo's own interior laid over it in two halves,
    unstretched: the upper half hangs from the upper lip (upper teeth move with it), the lower
    half stands on the lower lip (lower teeth move with the jaw), split at ``own.split``, and
    the painted cavity shows where they part. Columns map between the lip corners in
    proportion. The halves' cut edges fade over OWN_EDGE_IOD × ``iod`` px."""
    h, w = picture.shape[:2]
    soft = max(1.0, OWN_EDGE_IOD * iod)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    share = (xs - upper[0, 0]) / max(float(upper[-1, 0] - upper[0, 0]), 1e-3)
    sx = own.upper[0, 0] + share * (own.upper[-1, 0] - own.upper[0, 0])
    own_top = np.interp(sx, own.upper[:, 0], own.upper[:, 1])
    own_bottom = np.interp(sx, own.lower[:, 0], own.lower[:, 1])
    split = own_top + own.split * (own_bottom - own_top)
    below_upper = ys - np.interp(xs, upper[:, 0], upper[:, 1])
    above_lower = np.interp(xs, lower[:, 0], lower[:, 1]) - ys
    columns = np.broadcast_to(sx, (h, w)).astype(np.float32)
    out = picture
    # the lower half reaches a pixel further: where the halves just meet, no cavity shows between
    for depth, at, reach in ((above_lower, own_bottom - above_lower, own_bottom - split + 1.5),
                             (below_upper, own_top + below_upper, split - own_top + 0.5)):
        layer = cv2.remap(own.pixels, columns, at.astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        cover = np.clip((reach - depth) / soft + 0.5, 0, 1).astype(np.float32)[..., None]
        out = out + (layer - out) * cover
    return out


def _interior(upper: np.ndarray, lower: np.ndarray, shape: tuple[int, int], look: MouthLook) -> np.ndarray:
    """(h, w, 3) float32 picture of cavity and teeth for the lip contours (patch pixels); no
    painted teeth where the photo's own are shown (``look.own_teeth``)."""
    h, w = shape
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None]
    top = np.interp(xs, upper[:, 0], upper[:, 1])[None, :]
    bottom = np.interp(xs, lower[:, 0], lower[:, 1])[None, :]
    gap = np.maximum(bottom - top, 1e-3)
    centre = (upper[0, 0] + upper[-1, 0]) / 2
    half = max(abs(upper[-1, 0] - upper[0, 0]) / 2, 1.0)
    across = np.clip(np.abs(xs - centre) / half, 0, 1)[None, :]
    depth = np.clip((ys - top) / gap, 0, 1)
    shade = (0.55 + 0.45 * depth) * (1 - 0.5 * across)
    picture = np.broadcast_to(look.cavity, (h, w, 3)) * (1.4 - shade)[..., None]
    picture = _with_tongue(picture, bottom - ys, gap, across, look)
    if look.own_teeth is not None:
        return picture
    soft = max(1.0, 0.012 * look.iod)
    rounding = _tooth_rounding(xs - centre, look.iod)[None, :]
    upper_h = np.minimum(0.075 * look.iod, 0.45 * gap) * rounding
    lower_h = np.clip(gap - 0.2 * look.iod, 0, 0.045 * look.iod) * rounding
    upper_teeth = _teeth_band(ys - top, upper_h, across, 0.8, soft)
    lower_teeth = _teeth_band(bottom - ys, lower_h, across, 0.5, soft) * 0.7
    along = np.clip((ys - top) / np.maximum(upper_h, 1), 0, 1)
    teeth_light = (0.72 + 0.33 * along - 0.1 * along ** 6) * _tooth_gaps(xs - centre, look.iod)[None, :]
    cover = np.clip(upper_teeth + lower_teeth, 0, 1)[..., None]
    teeth = look.teeth * (teeth_light * (1 - 0.55 * across ** 2))[..., None]
    return picture * (1 - cover) + teeth * cover


def _with_tongue(picture: np.ndarray, above_lower: np.ndarray, gap: np.ndarray,
                 across: np.ndarray, look: MouthLook) -> np.ndarray:
    """The (h, w, 3) float32 cavity ``picture`` with the tongue laid in: a dome resting on
    the lower lip, rising with the opening (TONGUE_*), half the lips' colour and half a
    tongue pink as bright as the skin, lit at its front, in shadow towards its top edge (the
    back of the mouth), the corners and the lower lip's inner edge. ``above_lower``: (h, w)
    px from each pixel up to the lower lip's inner edge (negative below it); ``gap``: (1, w)
    opening, px; ``across``: (1, w) share of the half-width from the middle. Thin openings
    show none."""
    dome = np.sqrt(np.clip(1 - (across / TONGUE_HALF_WIDTH) ** 2, 0, 1))
    rise = np.clip(TONGUE_SHARE * (gap - TONGUE_FROM_IOD * look.iod), 0, TONGUE_IOD * look.iod)
    height = rise * dome
    soft = np.maximum(0.3 * height, 1.0)
    cover = np.clip((height - above_lower) / soft, 0, 1) * (above_lower > -1) * (height > 0.5)
    front = np.clip(1 - above_lower / np.maximum(height, 1.0), 0, 1)
    light = (0.6 + 0.3 * front) * (1 - 0.3 * across ** 2)
    edge = max(1.0, 0.015 * look.iod)
    light = light * (1 - 0.3 * np.exp(-(above_lower / edge) ** 2))  # the lower lip's shadow
    colour = 0.5 * look.lip + 0.5 * TONGUE_COLOR * float(np.clip(look.skin.mean() / 170.0, 0.4, 1.1))
    tongue = colour * light[..., None]
    return picture + (tongue - picture) * cover[..., None]


def _teeth_band(dist: np.ndarray, height: np.ndarray, across: np.ndarray, reach: float,
                soft: float) -> np.ndarray:
    """Coverage of a teeth row whose edge lies ``dist`` px from the lip, (h, w) in [0, 1];
    ``reach``: how far towards the corners the row shows (share of the half-width); ``soft``:
    width of the edge ramp, pixels."""
    edge = np.clip((height - dist) / soft + 0.5, 0, 1)
    return edge * (dist > -soft) * np.clip((reach - across) / 0.15, 0, 1)


def _tooth_rounding(dx: np.ndarray, iod: float) -> np.ndarray:
    """(w,) share of the row height each column reaches: teeth have rounded corners."""
    width = 0.16 * iod
    phase = np.abs(((dx / width) + 0.5) % 1.0 - 0.5) * 2
    return 1 - 0.18 * phase ** 4


def _tooth_gaps(dx: np.ndarray, iod: float) -> np.ndarray:
    """Faint darker lines between teeth, (w,) brightness factor."""
    width = 0.16 * iod
    phase = np.abs(((dx / width) + 0.5) % 1.0 - 0.5)
    return 1 - 0.1 * np.exp(-(phase * width / max(0.8, 0.006 * iod)) ** 2)
