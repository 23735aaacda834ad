"""Person / background matte (MediaPipe selfie segmentation; the model ships in the wheel).

The renderer uses it so that the background stays put while the head and body move.
"""
from __future__ import annotations

import logging

import numpy as np

from ..quiet import native_stderr_silenced

log = logging.getLogger(__name__)

GENERAL_MODEL, LANDSCAPE_MODEL = 0, 1


def person_matte(pixels: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 in [0, 1], the probability that each pixel of an (H, W, 3) uint8 RGB
    image shows the person; None when the segmentation model cannot be loaded."""
    try:
        from mediapipe.python.solutions import selfie_segmentation
    except ImportError as exc:
        log.warning("no person matte (%s); the background will move with the head", exc)
        return None
    h, w = pixels.shape[:2]
    model = LANDSCAPE_MODEL if w > 1.3 * h else GENERAL_MODEL
    with native_stderr_silenced(), selfie_segmentation.SelfieSegmentation(model_selection=model) as seg:
        result = seg.process(np.ascontiguousarray(pixels))
    if result.segmentation_mask is None:
        return None
    return np.clip(result.segmentation_mask, 0, 1).astype(np.float32)
