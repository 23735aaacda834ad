"""Audio → the per-frame 3DMM motion coefficients SadTalker renders from (its audio2coeff stage).

Per video frame t (25 fps): expression β_t (64) from ExpNet given the mel window, the source's
expression β₀ and the blink signal; head pose ρ_t (6: pitch, yaw, roll in radians, translation
3) from the PoseVAE decoder (pose style, seeded z per 32 frames), Savitzky–Golay smoothed.
Then SadTalker's render-time edits: β scaled by ``expression_scale``; ``still`` replaces the pose
by the source's; full mode appends the source's crop parameters (3) to every frame.
Everything random comes from ``seed`` (SadTalker itself is unseeded).
"""
from __future__ import annotations

import numpy as np
import torch

from .expnet import ExpNet
from .posevae import PoseVAE, smooth_pose

BLINK_SHAPE = np.array([0.5, 0.9, 1.0, 0.9, 0.5], dtype=np.float32)
EXP_CHUNK = 200


def blink_signal(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """SadTalker's generated blinks: (T,) float32, 5-frame bumps [0.5, 0.9, 1, 0.9, 0.5], each
    after a gap drawn uniformly from 10..min(T/2, 70) − 1 frames; none for T ≤ 20 (or when that
    range is empty, where the original would fail)."""
    ratio = np.zeros(num_frames, dtype=np.float32)
    low, high = min(10, num_frames), min(num_frames // 2, 70)
    if num_frames <= 20 or high <= low:
        return ratio
    frame = 0
    while frame < num_frames:
        start = frame + int(rng.integers(low, high))
        if start + 5 > num_frames - 1:
            break
        ratio[start:start + 5] = BLINK_SHAPE
        frame = start + 5
    return ratio


@torch.no_grad()
def expressions(expnet: ExpNet, mels: torch.Tensor, ref_exp: torch.Tensor,
                blink: torch.Tensor) -> torch.Tensor:
    """mels (T, 1, 80, 16), β₀ (64,), blink (T,) → β (T, 64); frames are independent, so they go
    in chunks of EXP_CHUNK (SadTalker uses 10; the result is the same)."""
    parts = []
    for i in range(0, mels.shape[0], EXP_CHUNK):
        m = mels[i:i + EXP_CHUNK]
        parts.append(expnet(m, ref_exp[None].expand(m.shape[0], -1), blink[i:i + EXP_CHUNK, None]))
    return torch.cat(parts, dim=0)


@torch.no_grad()
def poses(posevae: PoseVAE, mels: torch.Tensor, ref_pose: torch.Tensor, style: int,
          seed: int) -> np.ndarray:
    """mels (T, 1, 80, 16), ρ₀ (6,) → smoothed poses (T, 6) float32; z drawn from ``seed``."""
    raw = posevae(mels, ref_pose, style, torch.Generator().manual_seed(seed))
    return smooth_pose(raw.numpy()).astype(np.float32)


def motion_coefficients(expnet: ExpNet, posevae: PoseVAE, mels: np.ndarray, source: np.ndarray,
                        *, style: int = 0, seed: int = 0, blink: bool = True,
                        expression_scale: float = 1.0, head_motion_scale: float = 1.0,
                        still: bool = False, ref_pose: np.ndarray | None = None,
                        ref_blink: np.ndarray | None = None) -> np.ndarray:
    """Mel windows (T, 80, 16) and the source's coefficients (70 or 73: exp 64, angles 3,
    translation 3[, crop scale and offset 3]) → driving coefficients (T, same width) float32.

    ``head_motion_scale`` (ours; 1 = SadTalker) scales each frame's pose offset from frame 0.
    ``ref_pose``: (T, 6) pose coefficients of a reference video; their motion relative to its
    first frame is added to the pose (SadTalker's ``--ref_pose``). ``ref_blink``: (T,) eyelid
    closure 0..1 of a reference video, fed to ExpNet as its blink signal (SadTalker instead
    copies the reference's whole expression, lips included).
    """
    count = mels.shape[0]
    rng = np.random.default_rng(seed)
    ratio = blink_signal(count, rng) if blink else np.zeros(count, np.float32)
    if ref_blink is not None:
        ratio = np.asarray(ref_blink, np.float32)
    m = torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32))[:, None]
    src = torch.from_numpy(np.asarray(source, dtype=np.float32))
    exp = expressions(expnet, m, src[:64], torch.from_numpy(ratio)).numpy()
    pose = poses(posevae, m, src[64:70], style, seed)
    pose = pose[:1] + head_motion_scale * (pose - pose[:1])
    coeffs = np.concatenate([exp * expression_scale, pose], axis=1)
    if source.shape[0] > 70:
        coeffs = np.concatenate([coeffs, np.repeat(source[None, 70:], count, axis=0)], axis=1)
    if still:
        coeffs[:, 64:] = source[None, 64:]
    if ref_pose is not None:
        coeffs[:, 64:70] += head_motion_scale * (ref_pose - ref_pose[:1])
    return coeffs.astype(np.float32)
