"""PoseVAE decoder (SadTalker §3.3, the head-pose generator's conditional-VAE decoder).

Per 32-frame chunk: z ~ N(0, I) (64) plus a learned bias per style class (46), the first
frame's pose ρ₀ (6) and the chunk's speech embeddings projected to 6 per frame feed an MLP
(262 → 128 → 192, sigmoid), reshaped to (32 × 6); a small 2-D residual U-Net over
(time × 6) and a 6 → 6 linear layer give the pose offsets Δρ relative to frame 0. The speech
embeddings come from PoseVAE's own Wav2Lip-style encoder (same layout as ExpNet's).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..audio.dsp import savgol2
from .expnet import SpeechEncoder

SEQ_LEN = 32
POSE_DIM = 6


class PreActResidual(nn.Module):
    """BN–ReLU–conv(stride)–BN–ReLU–conv plus a conv–BN projection of the input; (N,C,H,W)."""

    def __init__(self, cin: int, cout: int, stride):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.norm2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip_conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.skip_norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(torch.relu(self.norm1(x)))
        y = self.conv2(torch.relu(self.norm2(y)))
        return y + self.skip_norm(self.skip_conv(x))


class PoseUNet(nn.Module):
    """Residual U-Net halving time three times: (N, 1, 32, 6) → (N, 1, 32, 6) in (0, 1)."""

    def __init__(self, filters: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        f0, f1, f2, f3 = filters
        self.stem_conv1 = nn.Conv2d(1, f0, 3, 1, 1)
        self.stem_norm = nn.BatchNorm2d(f0)
        self.stem_conv2 = nn.Conv2d(f0, f0, 3, 1, 1)
        self.stem_skip = nn.Conv2d(1, f0, 3, 1, 1)
        self.down1 = PreActResidual(f0, f1, (2, 1))
        self.down2 = PreActResidual(f1, f2, (2, 1))
        self.bridge = PreActResidual(f2, f3, (2, 1))
        self.up1 = nn.ConvTranspose2d(f3, f3, (2, 1), (2, 1))
        self.merge1 = PreActResidual(f3 + f2, f2, 1)
        self.up2 = nn.ConvTranspose2d(f2, f2, (2, 1), (2, 1))
        self.merge2 = PreActResidual(f2 + f1, f1, 1)
        self.up3 = nn.ConvTranspose2d(f1, f1, (2, 1), (2, 1))
        self.merge3 = PreActResidual(f1 + f0, f0, 1)
        self.out = nn.Conv2d(f0, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.stem_conv2(torch.relu(self.stem_norm(self.stem_conv1(x)))) + self.stem_skip(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.merge1(torch.cat([self.up1(self.bridge(x3)), x3], dim=1))
        y = self.merge2(torch.cat([self.up2(y), x2], dim=1))
        y = self.merge3(torch.cat([self.up3(y), x1], dim=1))
        return torch.sigmoid(self.out(y))


class PoseDecoder(nn.Module):
    """(ρ₀ (B,6), z (B,64), style (B,), speech (B,32,S)) → pose offsets Δρ (B, 32, 6)."""

    def __init__(self, speech_features: int = 512, latent: int = 64, styles: int = 46,
                 hidden: int = 128, filters: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        self.speech_proj = nn.Linear(speech_features, POSE_DIM)
        self.style_bias = nn.Parameter(torch.zeros(styles, latent))
        self.fc1 = nn.Linear(POSE_DIM + latent + SEQ_LEN * POSE_DIM, hidden)
        self.fc2 = nn.Linear(hidden, SEQ_LEN * POSE_DIM)
        self.unet = PoseUNet(filters)
        self.out = nn.Linear(POSE_DIM, POSE_DIM)

    def forward(self, ref_pose: torch.Tensor, z: torch.Tensor, style: torch.Tensor,
                speech: torch.Tensor) -> torch.Tensor:
        batch = z.shape[0]
        audio = self.speech_proj(speech).reshape(batch, -1)
        x = torch.cat([ref_pose, z + self.style_bias[style], audio], dim=-1)
        h = torch.sigmoid(self.fc2(torch.relu(self.fc1(x)))).reshape(batch, SEQ_LEN, POSE_DIM)
        return self.out(self.unet(h.unsqueeze(1)).squeeze(1))


class PoseVAE(nn.Module):
    """The inference half of PoseVAE: its speech encoder plus the CVAE decoder."""

    def __init__(self, width: int = 32, latent: int = 64, styles: int = 46, hidden: int = 128,
                 filters: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        self.speech = SpeechEncoder(width)
        self.decoder = PoseDecoder(self.speech.out_features, latent, styles, hidden, filters)
        self.latent = latent

    def chunk(self, mels: torch.Tensor, ref_pose: torch.Tensor, style: int,
              z: torch.Tensor) -> torch.Tensor:
        """One chunk: mels (n ≤ 32, 1, 80, 16) → offsets (32, 6); short chunks are padded at
        the front with their first embedding, as SadTalker pads."""
        speech = self.speech(mels)
        if speech.shape[0] < SEQ_LEN:
            pad = speech[:1].expand(SEQ_LEN - speech.shape[0], -1)
            speech = torch.cat([pad, speech], dim=0)
        style_t = torch.tensor([style], dtype=torch.long)
        return self.decoder(ref_pose[None], z, style_t, speech[None])[0]

    def forward(self, mels: torch.Tensor, ref_pose: torch.Tensor, style: int,
                generator: torch.Generator) -> torch.Tensor:
        """mels (T, 1, 80, 16), ρ₀ (6,) → raw poses (T, 6); frame 0 is ρ₀ itself.

        Frames 1..T−1 go in 32-frame chunks, each with a fresh z drawn from ``generator``
        (the same draws, in the same order, as SadTalker's global torch.randn); a remainder
        reuses the last 32 frames and keeps its tail.
        """
        rest = mels[1:]
        count, remainder = divmod(rest.shape[0], SEQ_LEN)
        parts = [torch.zeros(1, POSE_DIM, dtype=ref_pose.dtype)]
        for i in range(count):
            z = torch.randn(1, self.latent, generator=generator)
            parts.append(self.chunk(rest[i * SEQ_LEN:(i + 1) * SEQ_LEN], ref_pose, style, z))
        if remainder:
            z = torch.randn(1, self.latent, generator=generator)
            parts.append(self.chunk(rest[-SEQ_LEN:], ref_pose, style, z)[-remainder:])
        return ref_pose[None] + torch.cat(parts, dim=0)


def smooth_pose(pose: np.ndarray) -> np.ndarray:
    """Savitzky–Golay over time (window 13, or the longest odd one ≤ T; order 2): (T,6)."""
    length = pose.shape[0]
    window = 13 if length >= 13 else int((length - 1) / 2) * 2 + 1
    if window <= 2:
        return pose
    return savgol2(pose, window, axis=0)
