"""Motion copied from a reference video (``--ref-pose``, ``--ref-blink``): head pose relative to
its first frame, and eyelid closure only — never its lips or other expression.

A reference shorter than the output is looped; a longer one is cut.
"""
from __future__ import annotations

import numpy as np

from ..types import ReferenceMotion

OPEN_BASELINE_S = 2.0      # window of the running "eyes open" level
OPEN_PERCENTILE = 80
MIN_DIP = 0.1              # least relative narrowing of the eyes that can count as a blink
NOISE_K = 4.0              # ... and at least this many robust noise levels deep


def looped(values: np.ndarray, src_fps: float, fps: float, num_frames: int) -> np.ndarray:
    """(num_frames, ...) ``values`` (S, ...) resampled from ``src_fps`` to ``fps``, looped."""
    s = len(values)
    if s == 0:
        raise ValueError("empty reference")
    t = (np.arange(num_frames) / fps * src_fps) % s       # source frame position, looped
    lo = np.floor(t).astype(int)
    hi = np.where(lo + 1 < s, lo + 1, 0 if s > 1 else lo)
    frac = (t - lo).reshape((-1,) + (1,) * (values.ndim - 1))
    # no interpolation across the loop seam: hold the last frame instead
    frac = np.where((hi < lo).reshape(frac.shape[:1] + (1,) * (values.ndim - 1)), 0.0, frac)
    return ((1 - frac) * values[lo] + frac * values[hi]).astype(np.float32)


def reference_pose(ref: ReferenceMotion, fps: float, num_frames: int) -> np.ndarray:
    """(T, 6) float32 head pose copied from the reference, relative to its first frame."""
    return looped(ref.pose, ref.fps, fps, num_frames)


def closure_from_openness(openness: np.ndarray, fps: float) -> np.ndarray:
    """(S,) eyelid closure in [0, 1] from (S,) eye openness at ``fps`` (1 = shut).

    The narrowing is judged against a running high percentile of the openness (a squint or a
    head turn that narrows the eyes for seconds is no blink). Dips deeper than the noise count
    as blinks and are scaled so that a typical blink of this video closes fully: trackers see
    real and rendered lids close to different depths.
    """
    from scipy.ndimage import label, percentile_filter  # 0.2 s to import: only with a reference

    x = np.asarray(openness, np.float64)
    size = max(3, int(round(OPEN_BASELINE_S * fps)) | 1)
    level = percentile_filter(x, OPEN_PERCENTILE, size=size, mode="nearest")
    depth = np.clip(1 - x / np.maximum(level, 1e-6), 0, 1)
    noise = 1.4826 * np.median(np.abs(depth - np.median(depth)))
    threshold = max(MIN_DIP, NOISE_K * noise)
    runs, count = label(depth > threshold * 0.5)
    peaks = np.array([depth[runs == k].max() for k in range(1, count + 1)])
    blinks = [k + 1 for k, peak in enumerate(peaks) if peak > threshold]
    if not blinks:
        return np.zeros(len(x), np.float32)
    full = max(min(1.1 * float(np.median(peaks[np.array(blinks) - 1])), 1.0), 1.5 * threshold)
    floor = threshold * 0.5
    closure = np.clip((depth - floor) / (full - floor), 0, 1) * np.isin(runs, blinks)
    return (closure * closure * (3 - 2 * closure)).astype(np.float32)


def reference_blink(ref: ReferenceMotion, fps: float, num_frames: int) -> np.ndarray:
    """(T,) float32 eyelid closure copied from the reference's eyes."""
    return looped(closure_from_openness(ref.openness, ref.fps), ref.fps, fps, num_frames)
