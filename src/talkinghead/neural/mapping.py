"""MappingNet (SadTalker §3.4, the mapping M from 3DMM motion coefficients to face-vid2vid's
unsupervised 3D keypoint space), and the keypoint transform it drives.

Input: a window of 27 frames of the 70 coefficients (expression 64, angles 3, translation 3;
73 in full mode, + crop scale and offset) as (B, 70, 27). A 7-tap Conv1d to 1024 channels,
three LeakyReLU(0.1)–Conv1d(3, dilation 3) residual blocks (the skip cropped by 3 each side),
time average, then linear heads: yaw, pitch, roll as 66-bin logits (degrees = softmax
expectation · 3 − 99), translation t (3), expression deltas δ for 15 keypoints (45).
"""
from __future__ import annotations

import torch
from torch import nn

WINDOW = 27
RADIUS = 13


class MappingNet(nn.Module):
    """(B, C, 27) coefficient windows → dict of yaw/pitch/roll (B,66), t (B,3), exp (B,45)."""

    def __init__(self, coeffs: int = 70, width: int = 1024, layers: int = 3,
                 num_kp: int = 15, bins: int = 66):
        super().__init__()
        self.first = nn.Conv1d(coeffs, width, 7)
        self.blocks = nn.ModuleList([nn.Conv1d(width, width, 3, dilation=3) for _ in range(layers)])
        self.yaw = nn.Linear(width, bins)
        self.pitch = nn.Linear(width, bins)
        self.roll = nn.Linear(width, bins)
        self.t = nn.Linear(width, 3)
        self.exp = nn.Linear(width, 3 * num_kp)

    def forward(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.first(coeffs)
        for conv in self.blocks:
            h = conv(nn.functional.leaky_relu(h, 0.1)) + h[:, :, 3:-3]
        h = h.mean(dim=2)
        return {"yaw": self.yaw(h), "pitch": self.pitch(h), "roll": self.roll(h),
                "t": self.t(h), "exp": self.exp(h)}


def coefficient_windows(coeffs: torch.Tensor) -> torch.Tensor:
    """Per frame the 27 frames around it, indices clamped: (T, C) → (T, C, 27)."""
    count = coeffs.shape[0]
    offsets = torch.arange(-RADIUS, RADIUS + 1)
    index = (torch.arange(count)[:, None] + offsets[None, :]).clamp(0, count - 1)
    return coeffs[index].permute(0, 2, 1)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """66-bin logits (B, 66) → degrees (B,): softmax expectation · 3 − 99."""
    index = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=1) * index).sum(dim=1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees (B,) each → R = R_x(pitch)·R_y(yaw)·R_z(roll) (B, 3, 3); π taken as 3.14, as the
    original does."""
    p, y, r = (a / 180 * 3.14 for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    rx = torch.stack([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()], 1)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1)
    rz = torch.stack([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one], 1)
    return rx.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rz.view(-1, 3, 3)


def transform_keypoints(canonical: torch.Tensor, motion: dict[str, torch.Tensor],
                        angles: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """x_d = R·x_c + t + δ with t_x = t_z = 0 (face-vid2vid's Eq. 1 as SadTalker uses it).

    canonical (B, K, 3); motion from :class:`MappingNet`; ``angles`` optionally overrides
    yaw/pitch/roll in degrees (B,) each (free view; ``motion`` then needs no logits for them).
    Returns (B, K, 3).
    """
    angles = angles or {}
    degrees = {k: angles[k] if k in angles else bins_to_degrees(motion[k]) for k in ("yaw", "pitch", "roll")}
    rot = rotation_matrix(degrees["yaw"], degrees["pitch"], degrees["roll"])
    t = motion["t"] * torch.tensor([0.0, 1.0, 0.0], dtype=motion["t"].dtype, device=motion["t"].device)
    rotated = torch.einsum("bmp,bkp->bkm", rot, canonical)
    return rotated + t[:, None, :] + motion["exp"].view(motion["exp"].shape[0], -1, 3)
