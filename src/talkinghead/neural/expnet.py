"""ExpNet (SadTalker §3.2, the expression generator E): audio → 64 expression coefficients β.

A Wav2Lip-style speech encoder (13 conv–BN–ReLU blocks, the residual ones adding their input)
maps one mel window (1, 80, 16) to a 16·w vector (w = 32: 512); a linear head maps
[audio 512, reference expression β₀ 64, blink z_blink 1] → β (64) for that video frame.
"""
from __future__ import annotations

import torch
from torch import nn

#: (in, out, kernel, stride, padding, residual) as multiples of the width w (0 = 1 channel).
_SPEECH_BLOCKS = (
    (0, 1, 3, 1, 1, False), (1, 1, 3, 1, 1, True), (1, 1, 3, 1, 1, True),
    (1, 2, 3, (3, 1), 1, False), (2, 2, 3, 1, 1, True), (2, 2, 3, 1, 1, True),
    (2, 4, 3, 3, 1, False), (4, 4, 3, 1, 1, True), (4, 4, 3, 1, 1, True),
    (4, 8, 3, (3, 2), 1, False), (8, 8, 3, 1, 1, True),
    (8, 16, 3, 1, 0, False), (16, 16, 1, 1, 0, False),
)


class ConvBlock(nn.Module):
    """Conv2d → BatchNorm → (+ input when residual) → ReLU; shape-preserving when residual."""

    def __init__(self, cin: int, cout: int, kernel: int, stride, padding: int, residual: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return torch.relu(y + x if self.residual else y)


class SpeechEncoder(nn.Module):
    """Mel windows (N, 1, 80, 16) → speech embeddings (N, 16·width)."""

    def __init__(self, width: int = 32):
        super().__init__()
        channels = lambda m: 1 if m == 0 else m * width  # noqa: E731
        self.blocks = nn.Sequential(*[
            ConvBlock(channels(a), channels(b), k, s, p, r) for a, b, k, s, p, r in _SPEECH_BLOCKS
        ])
        self.out_features = 16 * width

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return self.blocks(mels).flatten(1)


class ExpNet(nn.Module):
    """β_t = head([speech(mel_t), β₀_t, blink_t]); per frame, frames independent."""

    def __init__(self, width: int = 32, num_exp: int = 64):
        super().__init__()
        self.speech = SpeechEncoder(width)
        self.head = nn.Linear(self.speech.out_features + num_exp + 1, num_exp)

    def forward(self, mels: torch.Tensor, ref_exp: torch.Tensor, blink: torch.Tensor) -> torch.Tensor:
        """mels (N, 1, 80, 16), ref_exp (N, 64), blink (N, 1) → expression (N, 64)."""
        return self.head(torch.cat([self.speech(mels), ref_exp, blink], dim=1))
