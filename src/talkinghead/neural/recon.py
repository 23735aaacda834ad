"""The 3DMM coefficient regressor (Deep3DFaceRecon, Deng et al. 2019; SadTalker §3.1): a
ResNet-50 (torchvision v1.5 layout, stride in the 3×3 convolution) without its classifier, then
seven 1×1 heads concatenated into 257 coefficients per aligned 224×224 face: identity α 80,
expression β 64, texture δ 80, angles 3 (pitch, yaw, roll, radians), lighting γ 27,
translation 2 + 1. The alignment of the photo to 224×224 is in :mod:`.align`.
"""
from __future__ import annotations

import torch
from torch import nn

HEADS = (80, 64, 80, 3, 27, 2, 1)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride) → 1×1 (×4 channels), BN after each, projection when shapes change."""

    def __init__(self, cin: int, planes: int, stride: int, width: int = 1):
        super().__init__()
        mid = planes * width
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.project = None
        if stride != 1 or cin != planes * 4:
            self.project = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                         nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.project is None else self.project(x)))


class CoefficientRegressor(nn.Module):
    """Aligned face (B, 3, 224, 224), RGB in [0, 1] → 257 coefficients (B, 257)."""

    def __init__(self, base: int = 64, layers: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(base)
        stages, cin = [], base
        for i, count in enumerate(layers):
            planes = base * 2 ** i
            blocks = [Bottleneck(cin if j == 0 else planes * 4, planes, 2 if (i and not j) else 1)
                      for j in range(count)]
            stages.append(nn.Sequential(*blocks))
            cin = planes * 4
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList([nn.Conv2d(cin, n, 1) for n in HEADS])

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(face)))
        x = nn.functional.max_pool2d(x, 3, 2, 1)
        for stage in self.stages:
            x = stage(x)
        x = x.mean(dim=(2, 3), keepdim=True)
        return torch.cat([head(x) for head in self.heads], dim=1).flatten(1)
