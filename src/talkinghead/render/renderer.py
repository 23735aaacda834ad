"""Per-frame rendering: pose and deform the mesh, warp the photo, paint the mouth interior."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from ..face import regions as R
from ..face.crop import Framing
from ..face.model import LID_SKIN_HOLD, LOWER_LID_RISE
from ..motion.gaze import UNIT_DEG
from ..types import FaceFit
from .gaze import EyeAxis
from .mouth import (MouthLook, OwnTeeth, added_blur, between_curves, paint_mouth, photo_grain,
                    reach_corners, seen_interior)
from .rims import Rim, RimHold, under_rim
from .warp import BackwardMap, Picture, WarpField, warp_into

# rings of control points around the head: (scale of the face oval, rigid weight, expression weight)
RINGS = ((1.22, 0.92, 0.45), (1.55, 0.6, 0.12), (2.1, 0.22, 0.0))
BELOW_CHIN_DAMPING = 0.45
BORDER_POINTS = 12
STRETCH_FROM = 1.15  # the photo's own interior is shown up to this × its lip gap, then ...
STRETCH_FADE = 0.5   # ... painted over within this × its gap more (+ STRETCH_FADE_IOD)
STRETCH_FADE_IOD = 0.02
MOUTH_AREA_IOD = 0.25  # the photo's sharpness is judged on the lips and this much around them
EYEBALL_MIN_CLOSURE = 0.02  # lid closure from which the eyeball layer is drawn, ...
EYEBALL_FULL_CLOSURE = 0.08  # ... faded in up to this closure over the frame without it
EYEBALL_INSET_PX = 1.0  # the eyeball shows this far inside the lid contour (lashes stay)
LID_SKIN_BAND = (0.12, 0.5)  # lid skin shown over a closing eye: this band above the upper lid,
                            # in openings (clear of the lash line, which moves down as a strip)
LID_STRIP_FADE_IOD = 0.04  # the lid strip (LID_SKIN_HOLD) fades into the warped lid skin over this
LID_STRIP_TAPER = 0.5  # ... and towards the eye's corners, where the lid drops less than this × its most
LASH_HANG = 0.5  # lashes of a closing lid hang this × LID_SKIN_HOLD below it (mirrored, darken only)
LASHES_FROM = 0.7  # ... from this closure on, fully at 1 (over the lower lid, not the eyeball)
RIM_REACH_IOD = (0.1, 0.35)  # with glasses, eye boxes reach this far past the lid corners, and above the lid
EYES = ((R.LEFT_UPPER_LID, R.LEFT_LOWER_LID), (R.RIGHT_UPPER_LID, R.RIGHT_LOWER_LID))  # blink_left, _right
IRISES = (R.LEFT_IRIS, R.RIGHT_IRIS)
MIN_TURN_PX = 0.05  # an eye shift below this (pixels) is not drawn
GLASSES_BROW_GAIN = 0.35  # behind glasses brows rise this share as far (they bend the frame)
FOLDING_REGIONS = (  # eye and mouth openings: the warp may fold there (lids and lips close)
    *(np.concatenate(eye) for eye in EYES),
    np.concatenate([R.UPPER_INNER, R.LOWER_INNER]),
)
MATTE_EDGE = (0.15, 0.6)  # matte values mapped to mobility 0 and 1
MATTE_SOFTNESS_IOD = 0.08  # blur of the mobility edge, in inter-ocular distances


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
        self.source = Picture.of(self.window)
        self.rings = _rings(fit, framing.roi)
        border = _border_points(x1 - x0, y1 - y0)
        points = np.concatenate([fit.mesh[:, :2], self.rings.points[:, :2]]) - self.origin
        step = grid_step or max(3, int(round(max(x1 - x0, y1 - y0) / 128)))
        self.mobility = _mobility(framing.matte, fit, self.origin)
        self.field = WarpField(np.concatenate([points, border]), x1 - x0, y1 - y0, step,
                               self.mobility)
        self.border_zeros = np.zeros((len(border), 2), np.float32)
        self.look = _mouth_look(framing.image, fit, float(np.mean(framing.scale)))
        self.blink_channels = [fit.channels.index("blink_left"), fit.channels.index("blink_right")]
        self.source_gap = _lip_gap(fit.mesh)
        self.gaze_channels = [fit.channels.index("gaze_x"), fit.channels.index("gaze_y")]
        self.eye_axes = tuple(EyeAxis.of(fit.mesh[:, :2] - self.origin, upper, lower, iris)
                              for (upper, lower), iris in zip(EYES, IRISES))
        self.rims = (tuple(Rim.under(self.window, edge - self.origin, fit.mesh[upper, :2] - self.origin,
                                     fit.iod)
                           for edge, (upper, _) in zip(framing.rims, EYES))
                     if framing.rims else (None, None))
        self.glasses = any(rim is not None for rim in self.rims)
        self.brow_channel = fit.channels.index("brow_raise")
        self.brow_gain = GLASSES_BROW_GAIN if self.glasses else 1.0

    def posed_mesh(self, expression: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        """(478, 3) working-pixel mesh for (C,) expression weights, (6,) pose, blink in [0, 1]."""
        weights = expression.astype(np.float32).copy()
        weights[self.blink_channels] = self._lid_weights(expression, blink)
        weights[self.brow_channel] *= self.brow_gain
        mesh = self.fit.neutral + np.tensordot(weights, self.fit.basis, axes=1)
        return self._rigid(mesh, pose)

    def render(self, expression: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        """One (H, W, 3) uint8 frame of the working picture (a new array every call)."""
        mesh = self.posed_mesh(expression, pose, blink)
        backward, folds = self.frame_map(mesh, pose)
        frame = self.framing.image.copy()
        x0, y0, x1, y1 = self.framing.roi
        window = frame[y0:y1, x0:x1]
        warp_into(window, self.source, backward)
        turns = self._eye_turns(expression)
        lids = self._lid_weights(expression, blink)
        closure = float(np.max(lids))
        turned = any(max(abs(along), drop) >= MIN_TURN_PX for along, drop in turns)
        if closure <= EYEBALL_MIN_CLOSURE:
            if turned:
                self._turn_eyes(window, backward, mesh, turns)
        else:
            fade = closure < EYEBALL_FULL_CLOSURE  # the lid layers fade in: no pop as a blink begins
            if fade:
                x0, y0, x1, y1 = self._eyes_region(mesh, window.shape)
                open_eyes = np.empty_like(window)  # only the eyes' region is filled and used
                open_eyes[y0:y1, x0:x1] = window[y0:y1, x0:x1]
                if turned:
                    self._turn_eyes(open_eyes, backward, mesh, turns)
            self._cover_lids(window, backward, mesh)
            self._paint_eyes(window, expression, pose, mesh, folds, lids, backward, turns)
            if fade:
                share = (closure - EYEBALL_MIN_CLOSURE) / (EYEBALL_FULL_CLOSURE - EYEBALL_MIN_CLOSURE)
                _fade_from(window[y0:y1, x0:x1], open_eyes[y0:y1, x0:x1], share)
        local = mesh[:, :2] - self.origin
        upper, lower = reach_corners(local[R.UPPER_INNER], local[R.LOWER_INNER],
                                     local[R.MOUTH_CORNERS], self.fit.iod)
        paint_mouth(window, upper, lower, self.look, self._interior_opacity(mesh))
        return frame

    def frame_map(self, mesh: np.ndarray, pose: np.ndarray) -> tuple[BackwardMap, np.ndarray]:
        """Where the frame of a posed (478, 3) ``mesh`` (``posed_mesh``) with (6,) ``pose``
        samples the photo, and its (rows, cols) bool folding cells (``_folding_cells``)."""
        local, rigid = self._displacement(mesh, pose)
        folds = self._folding_cells(mesh)
        backward = self.field.backward_map(local, folds=folds, smooth=rigid)
        return backward, folds

    def _interior_opacity(self, mesh: np.ndarray) -> float:
        """How much of the mouth opening is painted (0..1): all of it for a photo with closed
        lips; for parted lips, none while the warp stretches the photo's own interior little,
        all of it once that would stretch beyond STRETCH_FROM + STRETCH_FADE × its gap; with
        the photo's own teeth shown (``MouthLook.own_teeth``), all of it once the lips part further
        than in the photo (its interior is then shown unstretched, see ``paint_mouth``)."""
        if self.look.own_teeth is not None:
            start, fade = self.source_gap, STRETCH_FADE_IOD * self.fit.iod
        else:
            start = STRETCH_FROM * self.source_gap
            fade = STRETCH_FADE * self.source_gap + STRETCH_FADE_IOD * self.fit.iod
        return float(np.clip((_lip_gap(mesh) - start) / fade, 0.0, 1.0))

    def _lid_weights(self, expression: np.ndarray, blink: float) -> np.ndarray:
        """(2,) closure of each of the EYES: its blink channel, ``blink``, and the lid following
        the eye down (``EyeAxis.lid_follow``)."""
        follow = [axis.lid_follow(drop, LOWER_LID_RISE)
                  for axis, (_, drop) in zip(self.eye_axes, self._eye_turns(expression))]
        return np.clip(expression[self.blink_channels] + blink + np.float32(follow), 0, 1)

    def _eye_turns(self, expression: np.ndarray) -> tuple[tuple[float, float], ...]:
        """(along, drop) px of each of the EYES' turn (``EyeAxis.along_px``, ``drop_px``); no
        drop with glasses."""
        side, down = (float(expression[c]) * UNIT_DEG for c in self.gaze_channels)
        if self.glasses:
            down = 0.0  # behind glasses a lid held half down shows the lid layers' seams
        iod = self.fit.iod
        return tuple((axis.along_px(side, iod), axis.drop_px(down, iod)) for axis in self.eye_axes)

    def _turn_eyes(self, window: np.ndarray, backward: BackwardMap, mesh: np.ndarray,
                   turns: tuple[tuple[float, float], ...]) -> None:
        """Inside each eye's opening (the lid contour, anti-aliased), fetch the photo's eye
        turned (``EyeAxis.turned``) by its ``turns`` (``_eye_turns``)."""
        local = mesh[:, :2] - self.origin
        for (upper, lower), axis, (along, drop) in zip(EYES, self.eye_axes, turns):
            box = _box(np.concatenate([local[upper], local[lower]]), 1, window.shape)
            x0, y0, x1, y1 = box
            if max(abs(along), drop) < MIN_TURN_PX or x1 - x0 < 2 or y1 - y0 < 2:
                continue
            mask = between_curves(local[upper] - [x0, y0], local[lower] - [x0, y0], (y1 - y0, x1 - x0))
            eye = self._fetch(axis.turned(_frame_xy(backward, box), along, drop))
            patch = window[y0:y1, x0:x1].astype(np.float32)
            patch += (eye - patch) * mask[..., None]
            window[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)

    def _cover_lids(self, window: np.ndarray, backward: BackwardMap, mesh: np.ndarray) -> None:
        """Where a closing lid lies over pixels that the warp still fetches from inside the
        photo's eye opening (the coarse field cannot fold the opening to nothing, so iris and
        white would show through the lid), fetch lid skin instead: the band above the photo's
        upper lid, its lash line at the bottom, stretched down over the opening."""
        local = mesh[:, :2] - self.origin
        for (upper, lower), rim in zip(EYES, self.rims):
            opening = np.concatenate([local[upper], local[lower[-2:0:-1]]])
            source_upper = self.fit.mesh[upper, :2] - self.origin
            source_lower = self.fit.mesh[lower, :2] - self.origin
            box = _box(np.concatenate([opening, source_upper, source_lower]), 2, window.shape)
            bx0, by0, bx1, by1 = backward.box
            x0, y0, x1, y1 = max(box[0], bx0), max(box[1], by0), min(box[2], bx1), min(box[3], by1)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            xy = backward.xy[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
            depth, lid_xy = _lid_skin(xy, source_upper, source_lower)
            shown = between_curves(local[upper] - [x0, y0], local[lower] - [x0, y0],
                                   (y1 - y0, x1 - x0))
            leak = depth * (1 - shown)
            if float(leak.max()) <= 0:
                continue
            skin = under_rim(self._fetch(lid_xy), lid_xy, rim, (x0, y0), leak > 0)
            patch = window[y0:y1, x0:x1].astype(np.float32)
            mixed = patch + (skin - patch) * leak[..., None]
            window[y0:y1, x0:x1] = np.rint(mixed).astype(np.uint8)

    def _paint_eyes(self, window: np.ndarray, expression: np.ndarray, pose: np.ndarray,
                    mesh: np.ndarray, folds: np.ndarray, lids: np.ndarray,
                    backward: BackwardMap, turns: tuple[tuple[float, float], ...]) -> None:
        """Inside the lids' (closing) opening, show the eye as posed without the blink: the
        lid slides over an eyeball that keeps its shape, instead of squashing the iris. Above
        the closing upper lid, show the open lid's lashes and skin moved down with it as one
        strip, and below it its lashes hanging down (``_lid_layers``): the coarse warp cannot
        fold the opening away under a band a few pixels high, and left the lashes short of the
        closed lid with eye showing between. ``lids``: (2,) closure of each of the EYES.
        ``folds``: the frame's folding cells, so that the eye moves as in the frame's warp.
        With glasses (``self.rims``), the photo above a rim's lower edge shows as without the
        blink, and the skin that the lid pulls down comes from below the edge (``rims``): the
        frame occludes the lid instead of bending with it; the eye's box then reaches up to
        where the blink stops moving the skin, and the lid layers cover only the box without
        glasses. ``turns``: each eye's turn (``_eye_turns``), drawn on the eyeball."""
        open_eyes = expression.astype(np.float32).copy()
        open_eyes[self.blink_channels] = 0
        open_eyes[self.gaze_channels[1]] = 0  # the lids as open as without the blink
        still = self.posed_mesh(open_eyes, pose, 0.0)
        still_local, still_rigid = self._displacement(still, pose)
        local, opened = mesh[:, :2] - self.origin, still[:, :2] - self.origin
        lid_boxes = [self._eye_box(local, opened, upper, lower, False, window.shape) for upper, lower in EYES]
        boxes = [self._eye_box(local, opened, upper, lower, True, window.shape) if rim is not None else box
                 for (upper, lower), rim, box in zip(EYES, self.rims, lid_boxes)]
        eyes = self.field.maps_within(still_local, boxes, folds=folds, smooth=still_rigid)
        for (upper, lower), closure, eye, rim, lid_box, axis, turn in zip(
                EYES, lids, eyes, self.rims, lid_boxes, self.eye_axes, turns):
            x0, y0, x1, y1 = eye.box
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            patch = window[y0:y1, x0:x1].astype(np.float32)
            hold = None if rim is None else RimHold.of(rim, _frame_xy(backward, eye.box), eye.xy, (x0, y0))
            if hold is not None:
                hold.pull(patch)
            lx0, ly0, lx1, ly1 = lid_box
            if lx1 - lx0 >= 2 and ly1 - ly0 >= 2:
                inner = (slice(ly0 - y0, ly1 - y0), slice(lx0 - x0, lx1 - x0))
                self._lid_over(patch[inner], eye.xy[inner], axis.turned(eye.xy[inner], *turn),
                               local[upper] - [lx0, ly0], local[lower] - [lx0, ly0],
                               opened[upper] - [lx0, ly0], float(closure), rim, (lx0, ly0))
            if hold is not None:
                hold.hold(patch, self._fetch_points)
            window[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)

    def _lid_over(self, patch: np.ndarray, xy: np.ndarray, ball_xy: np.ndarray, closing: np.ndarray,
                  lower: np.ndarray, opened: np.ndarray, closure: float, rim: Rim | None,
                  at: tuple[int, int]) -> None:
        """Paint one eye's box (h, w, 3) float32 ``patch`` (window pixels from ``at`` on) in
        place: the eyeball as without the blink (the lids fetched at (h, w, 2) ``xy``, the
        turned eyeball at ``ball_xy``) inside the ``closing`` upper and ``lower`` lids, the lid
        strip and hanging lashes of the ``opened`` lid ((K, 2) box pixels each) for the lid's
        ``closure``."""
        mask = between_curves(closing, lower, patch.shape[:2], EYEBALL_INSET_PX)
        layers = _lid_layers(closing, opened, xy, LID_SKIN_HOLD * self.fit.iod,
                             LID_STRIP_FADE_IOD * self.fit.iod, closure)
        strip = under_rim(self._fetch(layers.strip_xy), layers.strip_xy, rim, at, layers.strip > 0)
        lashes = under_rim(self._fetch(layers.lashes_xy), layers.lashes_xy, rim, at, layers.lashes > 0)
        patch += (self._fetch(ball_xy) - patch) * mask[..., None]
        patch += (strip - patch) * layers.strip[..., None]
        patch += (np.minimum(patch, lashes) - patch) * layers.lashes[..., None]

    def _eye_box(self, local: np.ndarray, opened: np.ndarray, upper: np.ndarray,
                 lower: np.ndarray, glasses: bool, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The box that ``_paint_eyes`` redraws for one eye of the posed mesh (``local``; the
        same without the blink: ``opened``), window pixels; wider and taller with glasses."""
        iod = self.fit.iod
        above = RIM_REACH_IOD[1] if glasses else LID_SKIN_HOLD + LID_STRIP_FADE_IOD
        points = [local[upper], local[lower[-2:0:-1]], local[upper] + [0, LASH_HANG * LID_SKIN_HOLD * iod],
                  opened[upper] - [0, above * iod]]
        if glasses:
            side = [RIM_REACH_IOD[0] * iod, 0]
            points += [opened[upper[[0, -1]]] - side, opened[upper[[0, -1]]] + side]
        return _box(np.concatenate(points), 3, shape)

    def _eyes_region(self, mesh: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """The window box that the eyelid layers may redraw for a lid barely closing (the
        posed ``mesh``): both eyes' boxes as wide as with glasses."""
        local = mesh[:, :2] - self.origin
        boxes = np.array([self._eye_box(local, local, upper, lower, True, shape) for upper, lower in EYES])
        return (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0))

    def _fetch(self, xy: np.ndarray) -> np.ndarray:
        """(h, w, 3) float32 photo window sampled at (h, w, 2) window positions ``xy``."""
        return cv2.remap(self.window, xy, None, cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    def _fetch_points(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) float32 photo window sampled at (n, 2) window positions (in rows of 256,
        as ``cv2.remap`` takes at most 32767 of either)."""
        pad = -len(points) % 256
        grid = np.concatenate([points, np.repeat(points[-1:], pad, axis=0)]).reshape(-1, 256, 2)
        return self._fetch(grid.astype(np.float32)).reshape(-1, 3)[:len(points)]

    def _folding_cells(self, mesh: np.ndarray) -> np.ndarray:
        """(rows, cols) bool grid cells where the warp may fold: the eye and mouth openings
        (source and posed) and the cells beside them, which close by folding to nothing."""
        cells = np.zeros(self.field.grid_shape, bool)
        for region in FOLDING_REGIONS:
            pts = np.concatenate([mesh[region, :2], self.fit.mesh[region, :2]]) - self.origin
            cells |= self.field.cell_mask(cv2.convexHull(pts.astype(np.float32))[:, 0], 0.0)
        return cells

    def _displacement(self, mesh: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward displacement of every control point for the posed ``mesh``, pixels, in two
        (P, 2) parts: the local (expression) motion, and the head's rigid motion of the photo's
        own mesh (``WarpField.grid_backward`` smooths the latter)."""
        rings = self.rings
        moved = self._rigid(self.fit.mesh, pose)[:, :2]
        ring_rigid = self._rigid(rings.points, pose)[:, :2] - rings.points[:, :2]
        ring_expr = mesh[rings.vertex, :2] - self._rigid(self.fit.neutral[rings.vertex], pose)[:, :2]
        local = np.concatenate([mesh[:, :2] - moved, ring_expr * rings.expression[:, None],
                                self.border_zeros])
        rigid = np.concatenate([moved - self.fit.mesh[:, :2], ring_rigid * rings.rigid[:, None],
                                self.border_zeros])
        return local, rigid

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


def _mouth_look(image: np.ndarray, fit: FaceFit, scale: float) -> MouthLook:
    """Lip and skin colours sampled from the photo at mesh vertices, its own teeth, and the
    softness and grain around its mouth; ``scale``: the photo's enlargement in ``image``."""
    def sample(idx: np.ndarray) -> np.ndarray:
        xy = np.round(fit.mesh[idx, :2]).astype(int)
        xy[:, 0] = np.clip(xy[:, 0], 0, image.shape[1] - 1)
        xy[:, 1] = np.clip(xy[:, 1], 0, image.shape[0] - 1)
        return image[xy[:, 1], xy[:, 0]].astype(np.float32).mean(axis=0)

    lips = np.concatenate([R.UPPER_OUTER[2:-2], R.LOWER_OUTER[2:-2]])
    cheeks = np.array([50, 280, 101, 330, 205, 425])
    upper, lower = fit.mesh[R.UPPER_INNER, :2], fit.mesh[R.LOWER_INNER, :2]
    teeth, cavity = seen_interior(image, upper, lower, fit.iod)
    around = fit.mesh[np.concatenate([R.UPPER_OUTER, R.LOWER_OUTER]), :2]
    margin = MOUTH_AREA_IOD * fit.iod
    (x0, y0), (x1, y1) = np.floor(around.min(axis=0) - margin), np.ceil(around.max(axis=0) + margin)
    box = (int(x0), int(y0), int(x1), int(y1))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    own_teeth = None if teeth is None else OwnTeeth.of(image, upper, lower)
    return MouthLook(lip=sample(lips), skin=sample(cheeks), iod=fit.iod, seen_teeth=teeth,
                     seen_cavity=cavity, blur=added_blur(gray, box), own_teeth=own_teeth,
                     grain=photo_grain(gray, box, scale))


def _lip_gap(mesh: np.ndarray) -> float:
    """Mean inner-lip gap of the five central lip pairs of a (478, ≥2) pixel mesh, pixels."""
    pairs = slice(3, 8)
    return float(max(0.0, np.mean(mesh[R.LOWER_INNER[pairs], 1] - mesh[R.UPPER_INNER[pairs], 1])))


def _lid_skin(xy: np.ndarray, upper: np.ndarray,
              lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For (h, w, 2) source positions ``xy`` and the photo's (K, 2) upper and lower lid
    contours (corner to corner): (h, w) how far inside the eye opening each position lies
    (0 outside, 1 a pixel or more inside), and (h, w, 2) float32 positions of lid skin to show
    there instead: a position at depth v ∈ [0, 1] of the opening (0 at the upper lid, 1 at
    the lower) fetches the skin between LID_SKIN_BAND openings above the upper lid, the
    lower end of the band for v = 1."""
    upper, lower = upper[np.argsort(upper[:, 0])], lower[np.argsort(lower[:, 0])]
    sx, sy = xy[..., 0], xy[..., 1]
    top = np.interp(sx, upper[:, 0], upper[:, 1])
    bottom = np.interp(sx, lower[:, 0], lower[:, 1])
    height = np.maximum(bottom - top, 1e-3)
    lo, hi = upper[:, 0].min(), upper[:, 0].max()
    inside = np.minimum.reduce([sy - top, bottom - sy, sx - lo, hi - sx])
    depth = np.clip(inside, 0, 1).astype(np.float32)
    v = np.clip((sy - top) / height, 0, 1)
    near, far = LID_SKIN_BAND
    lid_y = top - (near + (far - near) * (1 - v)) * height
    return depth, np.stack([sx, lid_y], axis=-1).astype(np.float32)


class LidLayers(NamedTuple):
    """What a closing upper lid shows over the warp, in an eye's box: the ``strip`` (lashes
    and lid skin just above the lid, carried down with it) and the ``lashes`` hanging below it
    (the strip mirrored at the lid, drawn where darker): (h, w) float32 coverages and (h, w, 2)
    float32 source positions ``strip_xy``, ``lashes_xy`` in the photo's window."""

    strip: np.ndarray
    strip_xy: np.ndarray
    lashes: np.ndarray
    lashes_xy: np.ndarray


def _fade_from(picture: np.ndarray, before: np.ndarray, share: float) -> None:
    """``picture`` (H, W, 3) uint8, in place: ``share`` of the way from ``before`` (the same
    picture before some pixels changed) to itself, in the box of the pixels that differ."""
    rows, cols = np.nonzero(np.any(picture != before, axis=-1))
    if len(rows):
        box = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        old = before[box].astype(np.float32)
        picture[box] = np.round(old + (picture[box] - old) * share).astype(np.uint8)


def _frame_xy(backward: BackwardMap, box: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w, 2) float32 window positions where the frame's warp ``backward`` fetches the
    pixels of window ``box``: its map inside its own box, the pixels themselves outside (a
    view of the map when ``box`` lies inside it: read only)."""
    x0, y0, x1, y1 = box
    bx0, by0, bx1, by1 = backward.box
    if bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1:
        return backward.xy[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    out = np.stack([xs, ys], axis=-1)
    cx0, cy0, cx1, cy1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] = backward.xy[cy0 - by0:cy1 - by0, cx0 - bx0:cx1 - bx0]
    return out


def _lid_layers(closing: np.ndarray, opened: np.ndarray, xy: np.ndarray, height: float,
                fade: float, closure: float) -> LidLayers:
    """For a lid's posed ``closing`` contour, the same lid ``opened`` ((K, 2) box pixels,
    corner to corner), the open eye's (h, w, 2) source positions ``xy`` in the box and the
    lid's ``closure`` in [0, 1]: the strip covers the ``height`` px above the closing lid,
    faded in over ``fade`` px above that and ending at the lid as ``between_curves`` begins,
    each column of the open lid moved down by that column's drop; the hanging lashes reach
    LASH_HANG × ``height`` below the lid, fading, as the lids meet (closure from LASHES_FROM
    to 1). Both fade towards the corners with the drop."""
    h, w = xy.shape[:2]
    closing, opened = closing[np.argsort(closing[:, 0])], opened[np.argsort(opened[:, 0])]
    xs = np.arange(w, dtype=np.float32)
    lid = np.interp(xs, closing[:, 0], closing[:, 1])
    drop = lid - np.interp(xs, opened[:, 0], opened[:, 1])
    taper = np.clip(drop / max(LID_STRIP_TAPER * float(drop.max()), 1e-3), 0, 1)
    ys = np.arange(h, dtype=np.float32)[:, None]
    below = ys - lid[None, :]
    strip = np.clip((below + height + fade) / fade, 0, 1) * np.clip(-below, 0, 1) * taper
    meet = np.clip((closure - LASHES_FROM) / (1 - LASHES_FROM), 0, 1)
    lashes = np.clip(1 - below / (LASH_HANG * height), 0, 1) * (below > 0) * taper * meet ** 2
    columns = np.broadcast_to(xs, (h, w))
    rows = ys - drop[None, :]

    def fetch(at: np.ndarray) -> np.ndarray:
        return cv2.remap(xy, columns, at.astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    return LidLayers(strip.astype(np.float32), fetch(rows), lashes.astype(np.float32),
                     fetch(rows - 2 * np.maximum(below, 0)))


def _mobility(matte: np.ndarray | None, fit: FaceFit, origin: np.ndarray) -> np.ndarray | None:
    """(h, w) float32 in [0, 1]: how much each window pixel may move. The person matte, with
    the face itself always free, softened so that no edge tears; None without a matte."""
    if matte is None:
        return None
    lo, hi = MATTE_EDGE
    mobility = np.clip((matte.astype(np.float32) - lo) / (hi - lo), 0, 1)
    hull = cv2.convexHull(np.round(fit.mesh[:, :2] - origin).astype(np.int32))
    cv2.fillConvexPoly(mobility, hull, 1.0)
    sigma = max(MATTE_SOFTNESS_IOD * fit.iod, 1.0)
    return cv2.GaussianBlur(mobility, (0, 0), sigma)


def _box(points: np.ndarray, margin: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) integer box around (N, 2) points plus ``margin``, inside ``shape``."""
    lo = np.floor(points.min(axis=0)).astype(int) - margin
    hi = np.ceil(points.max(axis=0)).astype(int) + margin + 1
    return max(lo[0], 0), max(lo[1], 0), min(hi[0], shape[1]), min(hi[1], shape[0])

