"""Vertex index sets of the MediaPipe 478-point face mesh (468 face + 2 × 5 iris).

"Right"/"left" are the subject's: the subject's right eye is on the image's left.
"""
from __future__ import annotations

import numpy as np

NUM_VERTICES = 478

# inner lip contour, corner to corner; UPPER_INNER[k] pairs with LOWER_INNER[k]
UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
UPPER_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
LOWER_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
MOUTH_CORNERS = np.array([61, 291])

# eyelids, outer corner to inner corner; UPPER_LID[k] pairs with LOWER_LID[k]
RIGHT_UPPER_LID = np.array([33, 246, 161, 160, 159, 158, 157, 173, 133])
RIGHT_LOWER_LID = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133])
LEFT_UPPER_LID = np.array([263, 466, 388, 387, 386, 385, 384, 398, 362])
LEFT_LOWER_LID = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362])
RIGHT_IRIS = np.arange(468, 473)
LEFT_IRIS = np.arange(473, 478)

RIGHT_BROW = np.array([46, 53, 52, 65, 55, 70, 63, 105, 66, 107])
LEFT_BROW = np.array([276, 283, 282, 295, 285, 300, 293, 334, 296, 336])

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
                      378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127,
                      162, 21, 54, 103, 67, 109])
CHIN = 152
NOSE_TIP = 1
FOREHEAD = 10


def inner_mouth_polygon() -> np.ndarray:
    """Vertex indices around the inner lip opening: upper contour, then lower contour back."""
    return np.concatenate([UPPER_INNER, LOWER_INNER[-2:0:-1]])


def eye_centers(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and left eye centres (mean of the lid contours) of (478, D) points."""
    right = points[np.concatenate([RIGHT_UPPER_LID, RIGHT_LOWER_LID])].mean(axis=0)
    left = points[np.concatenate([LEFT_UPPER_LID, LEFT_LOWER_LID])].mean(axis=0)
    return right, left
