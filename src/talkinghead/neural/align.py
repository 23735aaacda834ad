"""The 3DMM regressor's input: five landmarks from our 478-point mesh and the alignment of a
face crop to 224×224 exactly as Deep3DFaceRecon (and so SadTalker) computes it.

SadTalker detects 68 landmarks on the size×size crop and reduces them to five: the two eye
centres (mean of each eye's two corners), the nose tip and the two mouth corners, in that
order (image-left first). We take the same points from the MediaPipe mesh. The alignment:

1. flip y (y' = H − 1 − y; the regressor's convention is y up);
2. least squares for x' = s·R·X + t over the five points against five standard 3D landmarks
   (an 8-unknown affine camera; s = mean norm of its two rotation rows);
3. scale the crop by 102 / s (PIL bicubic, sizes truncated), cut the 224×224 window whose
   centre lands on t, zero outside the picture.

``params`` = (W, H, 102/s, t_x, t_y) — the last three are full mode's extra MappingNet inputs.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..face import regions as R

TARGET = 224
RESCALE = 102.0
#: Mesh vertices averaged for each of the five points: image-left eye (outer, inner corner),
#: image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
FIVE_POINT_VERTICES = ((33, 133), (362, 263), (R.NOSE_TIP,), (61,), (291,))
#: The five standard landmarks of the BFM mean face (Deep3DFaceRecon's similarity_Lm3D_all.mat
#: reduced to eye centres, nose tip and mouth corners, in the order above): (5, 3), unit scale.
STANDARD_FIVE = np.array([
    [-0.31148657, 0.29036078, 0.13377953],
    [0.30979887, 0.28972036, 0.13179526],
    [0.0032534988, -0.046179324, 0.55244243],
    [-0.25216928, -0.38133916, 0.22405732],
    [0.2484662, -0.38128236, 0.22235769],
], dtype=np.float32)


def five_points(mesh: np.ndarray) -> np.ndarray:
    """(478, ≥2) mesh in pixels → (5, 2) float64: eye centres, nose tip, mouth corners."""
    xy = np.asarray(mesh, dtype=np.float64)[:, :2]
    return np.stack([xy[list(idx)].mean(axis=0) for idx in FIVE_POINT_VERTICES])


def camera_fit(points: np.ndarray, standard: np.ndarray = STANDARD_FIVE) -> tuple[np.ndarray, float]:
    """Least-squares affine camera, points (N, 2) y-up ≈ P·[X 1]: → (t (2,), scale s)."""
    n = points.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = standard
    a[0::2, 3] = 1
    a[1::2, 4:7] = standard
    a[1::2, 7] = 1
    k = np.linalg.lstsq(a, points.reshape(-1, 1), rcond=None)[0][:, 0]
    scale = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(scale)


def align_face(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop (H, W, 3) uint8 and its five points (5, 2) in pixels (y down) → the aligned face
    (224, 224, 3) uint8 and params (5,) float32 = (W, H, scale, t_x, t_y)."""
    h0, w0 = image.shape[:2]
    flipped = np.stack([points[:, 0], h0 - 1 - points[:, 1]], axis=1)
    t, s = camera_fit(flipped)
    s = RESCALE / s
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - TARGET / 2 + (t[0] - w0 / 2) * s)
    up = int(h / 2 - TARGET / 2 + (h0 / 2 - t[1]) * s)
    resized = Image.fromarray(image).resize((w, h), resample=Image.BICUBIC)
    face = np.asarray(resized.crop((left, up, left + TARGET, up + TARGET)))
    return face, np.array([w0, h0, s, t[0], t[1]], dtype=np.float32)
