"""The linear face model: the person's own mesh is the identity, a basis of expression
displacements on the same 478-vertex topology carries expression.

Expression channels are built procedurally from the person's mesh in a face frame (origin at
the mouth centre, x towards the subject's left eye, y down, z away from the camera, unit = the
inter-ocular distance, IOD), so they fit any face shape without a learned model.
"""
from __future__ import annotations

import numpy as np

from ..types import FaceFit
from . import regions as R
from .crop import Framing

CHANNELS = (
    "jaw_open", "lip_close", "lip_press", "lip_funnel", "lip_pucker", "lip_stretch",
    "upper_lip_raise", "lower_lip_depress", "smile", "blink_left", "blink_right",
    "brow_raise", "brow_lower", "gaze_x", "gaze_y",
)
JAW_PIVOT = np.array([0.0, -0.75, 0.9])   # face frame, IOD: near the jaw joints
JAW_DROP = 0.45                           # lower-lip drop at jaw_open = 1, IOD
JAW_LENS = 0.75                           # lower-lip drop across the mouth: (1 - (x/w)²)^JAW_LENS
JAW_CORNER = 0.15                         # share of the jaw's drop the upper lip takes at its corners
LIP_THICKNESS = 0.22                      # IOD, seam to the outer lip contour and a bit more
HEAD_PIVOT_DEPTH = 0.9                    # IOD behind the mesh centroid
LOWER_LID_RISE = 0.12                     # share of the eye opening the lower lid closes in a blink
LID_SKIN_HOLD = 0.08                      # IOD above the lid margin that moves with it in a blink (lashes)
LID_SKIN_REACH = 0.12                     # IOD further up over which lid skin follows a blink
RIM_FULL_SHARE = 0.7                      # under a glasses rim: full follow from no higher than this share rim→lid


def fit_framed(framing: Framing, mesh: np.ndarray) -> FaceFit:
    """``fit_face`` of a photo's (478, 3) pixel ``mesh`` in its working picture ``framing``,
    with the glasses rims found there."""
    return fit_face(framing.map_points(mesh), framing.image.shape[1::-1], framing.rims)


def fit_face(mesh: np.ndarray, image_size: tuple[int, int],
             rims: tuple[np.ndarray, np.ndarray] | None = None) -> FaceFit:
    """Fit the linear model to a (478, 3) pixel mesh; ``image_size`` is (width, height).
    ``rims``: the lower edges of a glasses frame's top bars ((K, 2) pixels, left eye first,
    ``face.glasses.find_rims``), which the lid skin does not follow past in a blink."""
    mesh = mesh.astype(np.float64)
    frame = FaceFrame.from_mesh(mesh)
    local = frame.to_local(mesh)
    seam = _seam_heights(local)
    builders = {
        "jaw_open": _jaw, "lip_close": _lip_close, "lip_press": _lip_press,
        "lip_funnel": _funnel, "lip_pucker": _pucker, "lip_stretch": _stretch,
        "upper_lip_raise": _upper_raise, "lower_lip_depress": _lower_depress, "smile": _smile,
        "brow_raise": _brow_raise, "brow_lower": _brow_lower,
    }
    basis = np.zeros((len(CHANNELS), R.NUM_VERTICES, 3))
    for c, name in enumerate(CHANNELS):
        if name in builders:
            basis[c] = frame.to_pixels_vec(builders[name](local, seam))
    left, right = rims or (None, None)
    basis[CHANNELS.index("blink_left")] = _blink(mesh, frame, R.LEFT_UPPER_LID, R.LEFT_LOWER_LID,
                                                 R.LEFT_IRIS, left)
    basis[CHANNELS.index("blink_right")] = _blink(mesh, frame, R.RIGHT_UPPER_LID, R.RIGHT_LOWER_LID,
                                                  R.RIGHT_IRIS, right)
    source = np.zeros(len(CHANNELS))
    source[0] = mouth_gap(local) / JAW_DROP
    neutral = mesh - np.tensordot(source, basis, axes=1)
    center = mesh.mean(axis=0) + frame.axes[:, 2] * HEAD_PIVOT_DEPTH * frame.iod
    return FaceFit(
        mesh=mesh.astype(np.float32), neutral=neutral.astype(np.float32),
        basis=basis.astype(np.float32), source_expression=source.astype(np.float32),
        center=center.astype(np.float32), iod=float(frame.iod), channels=CHANNELS,
        image_size=image_size,
    )


def mouth_gap(local: np.ndarray) -> float:
    """Mean inner-lip gap of the five central lip pairs, IOD, of a face-frame mesh."""
    pairs = slice(3, 8)
    gap = local[R.LOWER_INNER[pairs], 1] - local[R.UPPER_INNER[pairs], 1]
    return float(max(0.0, gap.mean() - 0.005))


class FaceFrame:
    """Rigid face frame: ``origin`` (3,) px, ``axes`` (3, 3) columns x, y, z, ``iod`` px."""

    def __init__(self, origin: np.ndarray, axes: np.ndarray, iod: float):
        self.origin, self.axes, self.iod = origin, axes, iod

    @classmethod
    def from_mesh(cls, mesh: np.ndarray) -> "FaceFrame":
        right, left = R.eye_centers(mesh)
        origin = mesh[np.concatenate([R.UPPER_INNER, R.LOWER_INNER])].mean(axis=0)
        ex = left - right
        iod = float(np.linalg.norm(ex))
        ex = ex / iod
        down = origin - (left + right) / 2
        ey = down - ex * (down @ ex)
        ey /= np.linalg.norm(ey)
        ez = np.cross(ex, ey)
        return cls(origin, np.stack([ex, ey, ez], axis=1), iod)

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) pixel points → face-frame IOD units."""
        return (points - self.origin) @ self.axes / self.iod

    def to_pixels_vec(self, vectors: np.ndarray) -> np.ndarray:
        """(N, 3) face-frame displacement vectors (IOD) → pixel displacements."""
        return vectors @ self.axes.T * self.iod


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _seam_heights(local: np.ndarray) -> np.ndarray:
    """Height v of the lip seam (midline between the inner lips) below each vertex, (N,)."""
    mid = (local[R.UPPER_INNER] + local[R.LOWER_INNER]) / 2
    order = np.argsort(mid[:, 0])
    return np.interp(local[:, 0], mid[order, 0], mid[order, 1])


def _mouth_half_width(local: np.ndarray) -> float:
    return float(np.abs(local[R.MOUTH_CORNERS, 0]).mean())


def _below_seam(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """1 for the lower lip and jaw, 0 for the upper lip and above, (N,).

    The inner lip contours lie on the seam when the mouth is closed, so they are set by name.
    """
    weight = _sigmoid((local[:, 1] - seam) / 0.008)
    weight[R.UPPER_INNER[1:-1]] = 0.0
    weight[R.LOWER_INNER[1:-1]] = 1.0
    weight[R.LOWER_INNER[[0, -1]]] = 0.5
    return weight


def _lip_zone(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Weight of the lips themselves (1 on the lips, fading over the surrounding skin), (N,)."""
    hw = _mouth_half_width(local)
    lateral = 1 - _smoothstep(hw * 0.9, hw * 1.35, np.abs(local[:, 0]))
    vertical = 1 - _smoothstep(LIP_THICKNESS * 0.8, LIP_THICKNESS * 1.6, np.abs(local[:, 1] - seam))
    return lateral * vertical


def _jaw(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Rotation of the lower face about the jaw joints; the lower lip drops by JAW_DROP.

    The opening is lens-shaped, as in real speech: the lower lip's drop tapers towards the
    corners, and the upper lip beside them follows the corners down."""
    hw = _mouth_half_width(local)
    x = np.abs(local[:, 0])
    lateral = 1 - 0.75 * _smoothstep(hw, 1.3, x)
    arc = np.clip(1 - (x / (hw * 1.05)) ** 2, 0, 1) ** JAW_LENS
    zone = _lip_zone(local, seam)
    below = _below_seam(local, seam)
    weight = below * lateral * (1 - zone + zone * (0.25 + 0.75 * arc))
    weight += (1 - below) * zone * JAW_CORNER * _smoothstep(0.4 * hw, 0.95 * hw, x)
    rel = local[:, 1:] - JAW_PIVOT[1:]
    theta = JAW_DROP / np.abs(JAW_PIVOT[2] - local[R.LOWER_INNER[5], 2])
    disp = np.zeros_like(local)
    disp[:, 1] = -rel[:, 1] * theta
    disp[:, 2] = rel[:, 0] * theta
    disp *= weight[:, None]
    upper = (1 - below) * zone * arc
    disp[:, 1] -= 0.08 * JAW_DROP * upper
    return disp


def _lip_close(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Lifts the lower lip back against the upper one, cancelling ``jaw_open`` at the lips."""
    return -_jaw(local, seam) * _lip_zone(local, seam)[:, None]


def _lip_press(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Lips pressed and thinned: both lips squeezed towards the seam."""
    disp = np.zeros_like(local)
    disp[:, 1] = -0.3 * (local[:, 1] - seam)
    return disp * _lip_zone(local, seam)[:, None]


def _funnel(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Lips rounded and pushed forward with a small round opening (OW, SH, R)."""
    zone = _lip_zone(local, seam)
    disp = np.zeros_like(local)
    disp[:, 0] = -0.22 * local[:, 0]
    disp[:, 1] = 0.035 * np.where(local[:, 1] > seam, 1.0, -1.0) * (1 - _smoothstep(0.0, 0.5, np.abs(local[:, 0])))
    disp[:, 2] = -0.12
    return disp * zone[:, None]


def _pucker(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Lips gathered and protruded, nearly closed (UW, W)."""
    disp = np.zeros_like(local)
    disp[:, 0] = -0.35 * local[:, 0]
    disp[:, 2] = -0.18
    return disp * _lip_zone(local, seam)[:, None]


def _stretch(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Mouth corners pulled sideways, lips flattened (IY, S)."""
    disp = np.zeros_like(local)
    disp[:, 0] = 0.16 * local[:, 0]
    return disp * _lip_zone(local, seam)[:, None]


def _upper_raise(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    disp = np.zeros_like(local)
    disp[:, 1] = -0.07 * (1 - _below_seam(local, seam))
    return disp * _lip_zone(local, seam)[:, None]


def _lower_depress(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    disp = np.zeros_like(local)
    disp[:, 1] = 0.07 * _below_seam(local, seam)
    return disp * _lip_zone(local, seam)[:, None]


def _smile(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Mouth corners up and out, cheeks lifted."""
    hw = _mouth_half_width(local)
    d2 = (np.abs(local[:, 0]) - hw) ** 2 + ((local[:, 1] - seam) * 1.3) ** 2
    weight = np.exp(-d2 / 0.09) * _smoothstep(0.0, hw, np.abs(local[:, 0]))
    disp = np.zeros_like(local)
    disp[:, 0] = 0.10 * np.sign(local[:, 0])
    disp[:, 1] = -0.09
    return disp * weight[:, None]


def _brow_weight(local: np.ndarray) -> np.ndarray:
    """1 at and just above the brows, fading to 0 at the eyelids and high on the forehead, (N,)."""
    brow_v = float(local[np.concatenate([R.RIGHT_BROW, R.LEFT_BROW]), 1].mean())
    eye_v = float(local[np.concatenate([R.RIGHT_UPPER_LID, R.LEFT_UPPER_LID]), 1].mean())
    v = local[:, 1]
    rising = _smoothstep(eye_v, brow_v, v)
    forehead = 1 - _smoothstep(brow_v - 0.4, brow_v - 1.0, v)
    lateral = 1 - _smoothstep(1.0, 1.5, np.abs(local[:, 0]))
    return rising * forehead * lateral


def _brow_raise(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    disp = np.zeros_like(local)
    disp[:, 1] = -0.09
    return disp * _brow_weight(local)[:, None]


def _brow_lower(local: np.ndarray, seam: np.ndarray) -> np.ndarray:
    """Brows drawn down and together (a frown), strongest at their inner ends."""
    inner = 1 - _smoothstep(0.2, 0.9, np.abs(local[:, 0]))
    disp = np.zeros_like(local)
    disp[:, 0] = -0.04 * np.sign(local[:, 0]) * inner
    disp[:, 1] = 0.04 + 0.03 * inner
    return disp * _brow_weight(local)[:, None]


def _below_rim(rim: np.ndarray, point: np.ndarray, lid_y: float, band: float) -> float:
    """How far a (2,) pixel ``point`` follows a closing lid at height ``lid_y`` under a glasses
    ``rim`` ((K, 2) lower edge of its bar, x increasing): not at all at and above the rim,
    fully from the top of the lid's lash band (``band`` px above the lid) down, but from no
    higher than RIM_FULL_SHARE of the way from the rim to the lid, in proportion between;
    fully beside the rim's span."""
    x, y = point
    if not rim[0, 0] <= x <= rim[-1, 0]:
        return 1.0
    top = float(np.interp(x, rim[:, 0], rim[:, 1]))
    full = max(lid_y - band, top + RIM_FULL_SHARE * (lid_y - top))
    return float(np.clip((y - top) / max(full - top, 1e-3), 0.0, 1.0))


def _blink(mesh: np.ndarray, frame: FaceFrame, upper: np.ndarray, lower: np.ndarray,
           iris: np.ndarray, rim: np.ndarray | None = None) -> np.ndarray:
    """Pixel displacements that close one eye: the upper lid meets the lower lid.

    The lid skin above follows with a falloff; points inside the eye opening (iris) move in
    proportion to their height so that nothing folds over.
    """
    disp = np.zeros_like(mesh)
    gap = mesh[lower] - mesh[upper]
    gap[[0, -1]] = 0.0
    lid_drop = gap * (1 - LOWER_LID_RISE)
    disp[upper] = lid_drop
    disp[lower] = -gap * LOWER_LID_RISE
    opening_x = mesh[upper, 0]
    top = mesh[upper, 1]
    bottom = mesh[lower, 1]
    order = np.argsort(opening_x)
    for i in iris:
        x, y = mesh[i, 0], mesh[i, 1]
        t, b = np.interp(x, opening_x[order], top[order]), np.interp(x, opening_x[order], bottom[order])
        frac = np.clip((y - t) / max(b - t, 1e-3), 0.0, 1.0)
        drop = np.interp(x, opening_x[order], lid_drop[order, 1])
        disp[i, 1] = (1 - frac) * drop - frac * drop * LOWER_LID_RISE / (1 - LOWER_LID_RISE)
    _lid_skin_follow(mesh, frame, upper, disp, rim)
    return disp


def _lid_skin_follow(mesh: np.ndarray, frame: FaceFrame, upper: np.ndarray, disp: np.ndarray,
                     rim: np.ndarray | None = None) -> None:
    """Vertices just above the upper lid move with it: the lash band (LID_SKIN_HOLD, brows
    excepted) as one piece, so that the lashes come down to the closed lid's margin instead of
    smearing over it, and the lid skin above with a falloff (LID_SKIN_REACH). Under a glasses
    ``rim`` ((K, 2) lower edge of its bar), the skin stretches instead (``_below_rim``): it
    follows in proportion to its height between the rim (still) and the lash band, and not at
    all above the rim (no skin is pulled out from behind the frame)."""
    lid = mesh[upper]
    centre = lid.mean(axis=0)
    near = np.linalg.norm(mesh[:, :2] - centre[:2], axis=1) < 0.45 * frame.iod
    moved = set(upper.tolist()) | set(range(468, 478))
    brows = set(np.concatenate([R.RIGHT_BROW, R.LEFT_BROW]).tolist())
    for j in np.nonzero(near)[0]:
        if j in moved:
            continue
        d = np.linalg.norm(lid[:, :2] - mesh[j, :2], axis=1)
        k = int(np.argmin(d))
        above = mesh[j, 1] < lid[k, 1]
        if above:
            held = 0.0 if j in brows else LID_SKIN_HOLD * frame.iod
            beyond = max(float(d[k]) - held, 0.0)
            weight = np.exp(-(beyond / (LID_SKIN_REACH * frame.iod)) ** 2)
            if rim is not None:
                weight = min(weight, _below_rim(rim, mesh[j, :2], lid[k, 1], held))
            disp[j] = disp[upper[k]] * weight
