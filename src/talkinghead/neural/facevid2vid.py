"""The face-vid2vid renderer as SadTalker uses it (Wang et al. 2021, "One-Shot Free-View
Neural Talking-Head Synthesis"; SadTalker §3.4).

- :class:`KeypointDetector` — L: the canonical 3D keypoints x_c (K = 15) of the source image,
  a 2-D→3-D hourglass on a band-limited ¼-scale copy, softmax heatmaps, expectation.
- :class:`AppearanceEncoder` — F: the source image lifted to a 3-D feature volume f_s
  (32 × 16 × 64 × 64 at 256 px). Computed once per video, not per frame.
- :class:`DenseMotion` — M: per-keypoint sparse flows, a 3-D hourglass predicting K+1 soft masks
  → the dense 3-D warp w and the occlusion map o.
- :class:`SpadeDecoder` / :class:`Renderer` — G: the warped volume, flattened to 2-D, gated by o,
  decoded by an occlusion-aware SPADE generator to RGB in (0, 1).

Every width is a constructor argument (small values for tests); the defaults are SadTalker's.

Inference fast path (``Renderer.optimized``, on by default; CPU, float32, no autograd): the
per-frame part runs through the modules' ``infer`` methods instead of ``forward`` (which stays
the plain reference): batch norms folded into the convolutions; large 3×3 convolutions as
Winograd F(4×4, 3×3); nearest-upsample-then-conv as per-phase convolutions of the small input;
SPADE's instance norm taken before the upsampling it commutes with; γ, β (and a learned skip's
1×1 projection of β) as one convolution; the 7×7×7 mask convolution by FFT over W; the
one-output occlusion convolution as a matrix product (see :mod:`.fastconv`). All exact up to
float rounding. The derived weights are built on first use (~1–2 s, ~0.9 GB at SadTalker's
widths) and rebuilt whenever the weights change; big temporaries live in a per-renderer
scratch (~0.4 GB at 256 px), so a renderer must not run two frames concurrently.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fastconv import (
    FourierConv,
    Scratch,
    UpsampledConv,
    derived,
    fast_path,
    fold_batchnorm,
    single_output_conv2d,
    winograd_conv,
    winograd_weight,
)

#: Smallest H·W (per depth slice) and in/out channels for which a 3×3 convolution runs as
#: Winograd in the fast path; below, the direct convolution is as fast or faster (tests lower
#: them to cover that path).
WINOGRAD_MIN_PIXELS = 1024
WINOGRAD_MIN_CHANNELS = 96
#: Output tile m of Winograd F(m×m, 3×3): 4 = 4× fewer multiplies than direct, rounding error
#: ~10× the direct convolution's per layer (at 256 px the frame's error against exact float64
#: arithmetic stays the plain path's); 2 = 2.25× fewer, rounding like direct (frames ~1.4× slower).
WINOGRAD_TILE = 4


def coordinate_grid(depth: int, height: int, width: int, dtype=torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z), each spanning [−1, 1], on ``device``."""
    axes = [2 * (torch.arange(n, dtype=dtype, device=device) / (n - 1)) - 1 for n in (width, height, depth)]
    z, y, x = torch.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def _tensors(*modules: nn.Module) -> list[torch.Tensor]:
    """The parameters and buffers of ``modules`` (the sources of a cached derived tensor)."""
    return [t for m in modules for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))]


def _plain(conv: nn.Module):
    """(params, sources, out channels) of a convolution module, for :func:`conv3x3`."""
    return (lambda: (conv.weight, conv.bias)), _tensors(conv), conv.out_channels


def _folded(conv: nn.Module, bn: nn.Module):
    """(params, sources, out channels) of conv → eval-mode BN as one convolution."""
    return (lambda: fold_batchnorm(conv.weight, conv.bias, bn)), _tensors(conv, bn), conv.out_channels


def conv3x3(owner: nn.Module, name: str, x: torch.Tensor, params, sources: list[torch.Tensor],
            out_channels: int, scratch: Scratch, out: torch.Tensor | None = None) -> torch.Tensor:
    """Same-size 3×3 (2-D) or k×3×3 (3-D) convolution of x by ``params()`` = (weight, bias),
    cached on ``owner`` under ``name`` until ``sources`` (what they derive from) change;
    Winograd F(4×4, 3×3) when large enough (WINOGRAD_MIN_*), else direct. ``out``: a flat
    buffer the result may be written to (use the return value)."""
    if (x.shape[-1] * x.shape[-2] >= WINOGRAD_MIN_PIXELS
            and min(x.shape[1], out_channels) >= WINOGRAD_MIN_CHANNELS):
        tile = WINOGRAD_TILE

        def transformed():
            weight, bias = params()
            return winograd_weight(weight, tile), bias

        u, bias = derived(owner, f"{name}/winograd{tile}", transformed, *sources)
        return winograd_conv(x, u, bias, scratch, out)
    weight, bias = derived(owner, name, params, *sources)
    conv = F.conv3d if x.dim() == 5 else F.conv2d
    return conv(x, weight, bias, padding=tuple(k // 2 for k in weight.shape[2:]))


class Down2d(nn.Module):
    """conv 3×3 → BN → ReLU → 2×2 average pool: (N, cin, H, W) → (N, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(torch.relu(self.bn(self.conv(x))), 2)


class Down3d(nn.Module):
    """conv 3×3×3 → BN → ReLU → (1,2,2) average pool: halves H and W."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(torch.relu(self.bn(self.conv(x))), (1, 2, 2))

    def infer(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """forward with BN folded into the convolution where the slices are large (elsewhere
        the gain is nil and the folded copy of a wide layer's weights would cost memory)."""
        if x.shape[-1] * x.shape[-2] < WINOGRAD_MIN_PIXELS:
            return self(x)
        return F.avg_pool3d(conv3x3(self, "conv_bn", x, *_folded(self.conv, self.bn), scratch).relu_(), (1, 2, 2))


class Up3d(nn.Module):
    """nearest ×(1,2,2) → conv 3×3×3 → BN → ReLU: doubles H and W."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(F.interpolate(x, scale_factor=(1, 2, 2)))))

    def infer(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """forward with BN folded and the upsampling folded into per-phase convolutions, where
        the output slices are large (as :meth:`Down3d.infer`)."""
        if 4 * x.shape[-1] * x.shape[-2] < WINOGRAD_MIN_PIXELS:
            return self(x)
        params, sources, _ = _folded(self.conv, self.bn)
        return derived(self, "phases", lambda: UpsampledConv(*params(), 2), *sources)(x, relu=True)


class ConvBnAct2d(nn.Module):
    """conv k×k → BN → ReLU (or LeakyReLU 0.01); resolution kept."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, leaky: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(cout)
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return F.leaky_relu(y, 0.01) if self.leaky else torch.relu(y)

    def infer(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """forward with BN folded into the convolution (inference fast path)."""
        folded = _folded(self.conv, self.bn)
        if self.conv.kernel_size == (3, 3):
            y = conv3x3(self, "conv_bn", x, *folded, scratch)
        else:
            w, b = derived(self, "conv_bn", folded[0], *folded[1])
            y = F.conv2d(x, w, b, padding=self.conv.padding)
        return F.leaky_relu_(y, 0.01) if self.leaky else y.relu_()


class Residual3d(nn.Module):
    """BN–ReLU–conv–BN–ReLU–conv + input, 3-D, resolution kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(torch.relu(self.bn1(x)))
        return self.conv2(torch.relu(self.bn2(y))) + x


def _level(base: int, cap: int, i: int) -> int:
    """Channels at hourglass level i: min(cap, base·2^i)."""
    return min(cap, base * 2 ** i)


class BandLimitedDownsample(nn.Module):
    """Gaussian blur (σ = (1/s − 1)/2) then keep every (1/s)-th pixel: (N, C, H, W) → (N, C, sH, sW)."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad = size // 2
        t = torch.arange(size, dtype=torch.float32)
        g1 = torch.exp(-((t - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
        kernel = g1[:, None] * g1[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, size, size).clone())
        self.step = int(1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(x, (self.pad,) * 4), self.kernel, groups=x.shape[1])
        return y[:, :, ::self.step, ::self.step]


class KeypointDetector(nn.Module):
    """Image (B, 3, H, W) in [0, 1] → canonical keypoints x_c (B, K, 3) in [−1, 1]."""

    def __init__(self, base: int = 32, cap: int = 1024, blocks: int = 5, depth: int = 16,
                 num_kp: int = 15, temperature: float = 0.1, scale: float = 0.25):
        super().__init__()
        self.blur = BandLimitedDownsample(3, scale)
        self.down = nn.Sequential(*[Down2d(3 if i == 0 else _level(base, cap, i),
                                           _level(base, cap, i + 1)) for i in range(blocks)])
        bottom = _level(base, cap, blocks)
        self.lift = nn.Conv2d(bottom, bottom * depth, 1)
        self.up = nn.Sequential(*[Up3d(_level(base, cap, blocks - i), _level(base, cap, blocks - i - 1))
                                  for i in range(blocks)])
        self.heatmap = nn.Conv3d(_level(base, cap, 0), num_kp, 3, padding=1)
        self.depth = depth
        self.temperature = temperature

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.lift(self.down(self.blur(image)))
        b, c, hh, ww = h.shape
        logits = self.heatmap(self.up(h.view(b, c // self.depth, self.depth, hh, ww)))
        shape = logits.shape
        heat = torch.softmax(logits.view(b, shape[1], -1) / self.temperature, dim=2).view(shape)
        grid = coordinate_grid(*shape[2:], dtype=heat.dtype, device=heat.device)
        return (heat.unsqueeze(-1) * grid).sum(dim=(2, 3, 4))


class AppearanceEncoder(nn.Module):
    """Image (B, 3, H, W) → feature volume f_s (B, C3, D, H/2^n, W/2^n)."""

    def __init__(self, base: int = 64, cap: int = 512, downs: int = 2, volume_channels: int = 32,
                 depth: int = 16, residuals: int = 6):
        super().__init__()
        self.first = ConvBnAct2d(3, base, 3)
        self.down = nn.Sequential(*[Down2d(_level(base, cap, i), _level(base, cap, i + 1))
                                    for i in range(downs)])
        self.lift = nn.Conv2d(_level(base, cap, downs), cap, 1)
        self.residuals = nn.Sequential(*[Residual3d(volume_channels) for _ in range(residuals)])
        self.volume_channels = volume_channels
        self.depth = depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.lift(self.down(self.first(image)))
        b, _, hh, ww = h.shape
        return self.residuals(h.view(b, self.volume_channels, self.depth, hh, ww))


class Hourglass3d(nn.Module):
    """U-Net over (H, W) at constant depth: (B, cin, D, H, W) → (B, base + cin, D, H, W)."""

    def __init__(self, cin: int, base: int = 32, cap: int = 1024, blocks: int = 5):
        super().__init__()
        self.down = nn.ModuleList([Down3d(cin if i == 0 else _level(base, cap, i), _level(base, cap, i + 1))
                                   for i in range(blocks)])
        self.up = nn.ModuleList([Up3d((1 if i == blocks - 1 else 2) * _level(base, cap, i + 1),
                                      _level(base, cap, i)) for i in reversed(range(blocks))])
        self.out_channels = base + cin
        self.conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.bn = nn.BatchNorm3d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips.pop()
        for block in self.up:
            h = torch.cat([block(h), skips.pop()], dim=1)
        return torch.relu(self.bn(self.conv(h)))

    def infer(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """forward through the blocks' fast paths, the last BN folded."""
        skips = [x]
        for block in self.down:
            skips.append(block.infer(skips[-1], scratch))
        h = skips.pop()
        for block in self.up:
            h = torch.cat([block.infer(h, scratch), skips.pop()], dim=1)
        return conv3x3(self, "conv_bn", h, *_folded(self.conv, self.bn), scratch).relu_()


def keypoint_gaussians(kp: torch.Tensor, shape: tuple[int, int, int], variance: float = 0.01) -> torch.Tensor:
    """Keypoints (B, K, 3) → Gaussian blobs on the [−1,1]³ grid (B, K, D, H, W)."""
    grid = coordinate_grid(*shape, dtype=kp.dtype, device=kp.device)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


class DenseMotion(nn.Module):
    """(f_s, x_s, x_d) → warp (B, D, H, W, 3) in grid_sample coordinates, occlusion (B, 1, H, W)."""

    def __init__(self, volume_channels: int = 32, num_kp: int = 15, compress: int = 4,
                 base: int = 32, cap: int = 1024, blocks: int = 5, depth: int = 16):
        super().__init__()
        self.compress = nn.Conv3d(volume_channels, compress, 1)
        self.bn = nn.BatchNorm3d(compress)
        self.hourglass = Hourglass3d((num_kp + 1) * (compress + 1), base, cap, blocks)
        self.masks = nn.Conv3d(self.hourglass.out_channels, num_kp + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_channels * depth, 1, 7, padding=3)
        self.num_kp = num_kp

    def sparse_motions(self, shape, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Identity plus, per keypoint, grid − x_d + x_s: (B, K+1, D, H, W, 3)."""
        grid = coordinate_grid(*shape, dtype=kp_source.dtype, device=kp_source.device)[None, None]
        moved = grid - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        return torch.cat([grid.expand(kp_source.shape[0], 1, *grid.shape[2:]), moved], dim=1)

    def hourglass_input(self, feat: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor):
        """Compressed source features (B, c, D, H, W) → (sparse motions (B, K+1, D, H, W, 3),
        per keypoint [heatmap difference, features warped by its motion] (B, (K+1)(c+1), D, H, W))."""
        b, _, d, h, w = feat.shape
        k1 = self.num_kp + 1
        motions = self.sparse_motions((d, h, w), kp_source, kp_driving)
        rep = feat.unsqueeze(1).expand(b, k1, *feat.shape[1:]).reshape(b * k1, -1, d, h, w)
        warped = F.grid_sample(rep, motions.reshape(b * k1, d, h, w, 3), align_corners=False)
        warped = warped.view(b, k1, -1, d, h, w)
        heat = keypoint_gaussians(kp_driving, (d, h, w)) - keypoint_gaussians(kp_source, (d, h, w))
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1).unsqueeze(2)
        return motions, torch.cat([heat, warped], dim=2).view(b, -1, d, h, w)

    @staticmethod
    def flow(motions: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Sparse motions (B, K+1, D, H, W, 3) blended by softmax(mask logits (B, K+1, D, H, W)),
        weights under 1e-3 dropped → (B, D, H, W, 3)."""
        mask = torch.softmax(logits, dim=1).unsqueeze(2)
        mask = torch.where(mask < 1e-3, torch.zeros_like(mask), mask)
        return (motions.permute(0, 1, 5, 2, 3, 4) * mask).sum(dim=1).permute(0, 2, 3, 4, 1)

    def forward(self, volume: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor):
        b, _, _, h, w = volume.shape
        feat = torch.relu(self.bn(self.compress(volume)))
        motions, inputs = self.hourglass_input(feat, kp_source, kp_driving)
        pred = self.hourglass(inputs)
        occlusion = torch.sigmoid(self.occlusion(pred.reshape(b, -1, h, w)))
        return self.flow(motions, self.masks(pred)), occlusion

    def infer(self, volume: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor, scratch: Scratch):
        """forward through the fast paths (BN folded, Winograd, the mask convolution by FFT over W,
        the one-output occlusion convolution as a product)."""
        b, _, _, h, w = volume.shape
        params, sources, _ = _folded(self.compress, self.bn)
        weight, bias = derived(self, "compress", params, *sources)
        motions, inputs = self.hourglass_input(F.conv3d(volume, weight, bias).relu_(), kp_source, kp_driving)
        pred = self.hourglass.infer(inputs, scratch)
        occlusion = single_output_conv2d(pred.reshape(b, -1, h, w), self.occlusion.weight, self.occlusion.bias)
        masks = derived(self, f"masks fft{w}", lambda: FourierConv(self.masks.weight, self.masks.bias, w),
                        *_tensors(self.masks))
        return self.flow(motions, masks(pred)), occlusion.sigmoid_()


def upsampled_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      scale: int) -> torch.Tensor:
    """conv2d(nearest-upsample(x, scale), weight, bias, padding=1) without upsampling: each
    output phase is a small convolution of x with the taps that land on the same source pixel
    summed (at 4× that is 5.8× fewer multiply-adds, at 2× 2.25×). Same values up to rounding."""
    return UpsampledConv(weight, bias, scale)(x)


class Spade(nn.Module):
    """x̂ = IN(x)·(1 + γ(s)) + β(s) with γ, β from the segmentation-like map s, nearest-resized
    to x (at an integer upscale the resize is folded into the first convolution)."""

    def __init__(self, channels: int, label_channels: int, hidden: int = 128):
        super().__init__()
        self.shared = nn.Conv2d(label_channels, hidden, 3, padding=1)
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def activation(self, seg: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """relu(shared(nearest-resize(seg, size)))."""
        h, w = seg.shape[2:]
        if (h, w) == tuple(size):
            hidden = self.shared(seg)
        elif size[0] % h == 0 and size[0] // h == size[1] // w and size[1] % w == 0:
            hidden = upsampled_conv3x3(seg, self.shared.weight, self.shared.bias, size[0] // h)
        else:
            hidden = self.shared(F.interpolate(seg, size=size, mode="nearest"))
        return torch.relu(hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        act = self.activation(seg, x.shape[2:])
        return F.instance_norm(x, eps=1e-5) * (1 + self.gamma(act)) + self.beta(act)

    def infer(self, normalized: torch.Tensor, act: torch.Tensor, up: int, scratch: Scratch) -> torch.Tensor:
        """forward(nearest-upsample(x, up), ·) from IN(x) (N, C, h, w) and the activation
        (N, hidden, up·h, up·w): IN commutes with the upsampling, so it is never materialized.
        The result lives in ``scratch`` (valid until the next SPADE's)."""
        n, c, h, w = normalized.shape

        def params():
            return torch.cat([self.gamma.weight, self.beta.weight]), torch.cat([self.gamma.bias, self.beta.bias])

        buffer = scratch.get("spade", n * 2 * c * h * w * up * up, act)
        gb = conv3x3(self, "gamma_beta", act, params, _tensors(self.gamma, self.beta), 2 * c, scratch, buffer)
        return self._modulate(normalized, gb[:, :c], up).add_(gb[:, c:])

    def infer_projected(self, normalized: torch.Tensor, act: torch.Tensor, up: int, projection: torch.Tensor,
                        scratch: Scratch) -> torch.Tensor:
        """conv1x1(:meth:`infer`(…), projection (Co, C, 1, 1)), the projection of β folded into β's
        convolution (Co instead of C outputs)."""
        n, c, h, w = normalized.shape
        p = projection.flatten(1).double()

        def params():
            beta_w = torch.einsum("oc,c...->o...", p, self.beta.weight.double()).float()
            beta_b = (p @ self.beta.bias.double()).float()
            return torch.cat([self.gamma.weight, beta_w]), torch.cat([self.gamma.bias, beta_b])

        co = c + projection.shape[0]
        gb = conv3x3(self, "gamma_projected_beta", act, params, _tensors(self.gamma, self.beta) + [projection],
                     co, scratch, scratch.get("spade", n * co * h * w * up * up, act))
        return F.conv2d(self._modulate(normalized, gb[:, :c], up), projection).add_(gb[:, c:])

    @staticmethod
    def _modulate(normalized: torch.Tensor, gamma: torch.Tensor, up: int) -> torch.Tensor:
        """γ ← nearest-upsample(normalized, up) · (1 + γ), in place."""
        n, c, h, w = normalized.shape
        out = gamma.add_(1)
        if up == 1:
            return out.mul_(normalized)
        out.view(n, c, h, up, w, up).mul_(normalized.view(n, c, h, 1, w, 1))
        return out


class SpadeResBlock(nn.Module):
    """SPADE residual block; convolutions hold spectral-normalised weights folded at load."""

    def __init__(self, cin: int, cout: int, label_channels: int, hidden: int = 128):
        super().__init__()
        mid = min(cin, cout)
        self.norm_a = Spade(cin, label_channels, hidden)
        self.conv_a = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm_b = Spade(mid, label_channels, hidden)
        self.conv_b = nn.Conv2d(mid, cout, 3, padding=1)
        self.learned_skip = cin != cout
        if self.learned_skip:
            self.norm_skip = Spade(cin, label_channels, hidden)
            self.conv_skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        skip = self.conv_skip(self.norm_skip(x, seg)) if self.learned_skip else x
        y = self.conv_a(F.leaky_relu(self.norm_a(x, seg), 0.2))
        return skip + self.conv_b(F.leaky_relu(self.norm_b(y, seg), 0.2))

    def spades(self) -> list[Spade]:
        """The block's SPADEs: (skip,) a, b."""
        return [self.norm_skip, self.norm_a, self.norm_b] if self.learned_skip else [self.norm_a, self.norm_b]

    def activations(self, seg: torch.Tensor, size: tuple[int, int], scratch: Scratch) -> tuple[torch.Tensor, ...]:
        """Every SPADE's relu(shared(nearest-resize(seg, size))) in one convolution, split per SPADE
        (order of :meth:`spades`)."""
        spades = self.spades()
        sources = _tensors(*(s.shared for s in spades))

        def params():
            return torch.cat([s.shared.weight for s in spades]), torch.cat([s.shared.bias for s in spades])

        h, w = seg.shape[2:]
        scale = size[0] // h
        buffer = scratch.get("activations", seg.shape[0] * len(spades) * spades[0].shared.out_channels
                             * size[0] * size[1], seg)
        if tuple(size) != (h, w) and size == (scale * h, scale * w):
            conv = derived(self, f"shared x{scale}", lambda: UpsampledConv(*params(), scale), *sources)
            act = conv(seg, relu=True, out=buffer)
        else:
            if tuple(size) != (h, w):
                seg = F.interpolate(seg, size=size, mode="nearest")
            act = conv3x3(self, "shared", seg, params, sources, len(spades) * spades[0].shared.out_channels,
                          scratch, buffer).relu_()
        return act.split(spades[0].shared.out_channels, dim=1)

    def infer(self, x: torch.Tensor, seg: torch.Tensor, up: int, scratch: Scratch) -> torch.Tensor:
        """forward(nearest-upsample(x, up), seg) through the fast paths (up ∈ {1, 2, …})."""
        size = (x.shape[2] * up, x.shape[3] * up)
        acts = list(self.activations(seg, size, scratch))
        normalized = F.instance_norm(x, eps=1e-5)
        if self.learned_skip:
            skip = self.norm_skip.infer_projected(normalized, acts.pop(0), up, self.conv_skip.weight, scratch)
        else:
            skip = x if up == 1 else F.interpolate(x, scale_factor=up)
        y = F.leaky_relu_(self.norm_a.infer(normalized, acts[0], up, scratch), 0.2)
        y = conv3x3(self, "conv_a", y, *_plain(self.conv_a), scratch)
        y = F.leaky_relu_(self.norm_b.infer(F.instance_norm(y, eps=1e-5), acts[1], 1, scratch), 0.2)
        y = conv3x3(self, "conv_b", y, *_plain(self.conv_b), scratch)
        return y.add_(skip)


class SpadeDecoder(nn.Module):
    """Gated 2-D features (B, C, h, w) → RGB (B, 3, 4h, 4w) in (0, 1); C = 256 by default."""

    def __init__(self, channels: int = 256, out_channels: int = 64, hidden: int = 128, middle: int = 6):
        super().__init__()
        self.fc = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.middle = nn.ModuleList([SpadeResBlock(2 * channels, 2 * channels, channels, hidden)
                                     for _ in range(middle)])
        self.up_a = SpadeResBlock(2 * channels, channels, channels, hidden)
        self.up_b = SpadeResBlock(channels, out_channels, channels, hidden)
        self.to_rgb = nn.Conv2d(out_channels, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for block in self.middle:
            x = block(x, feature)
        x = self.up_a(F.interpolate(x, scale_factor=2), feature)
        x = self.up_b(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.to_rgb(F.leaky_relu(x, 0.2)))

    def infer(self, feature: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        """forward through the blocks' fast paths (no upsampled copies, Winograd convolutions)."""
        x = conv3x3(self, "fc", feature, *_plain(self.fc), scratch)
        for block in self.middle:
            x = block.infer(x, feature, 1, scratch)
        x = self.up_a.infer(x, feature, 2, scratch)
        x = self.up_b.infer(x, feature, 2, scratch)
        return self.to_rgb(F.leaky_relu_(x, 0.2)).sigmoid_()


PRECISIONS = ("fp32", "bf16")


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 convolutions run natively (CPU: AVX-512 BF16 / AMX; CUDA: compute ≥ 8)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


class Renderer(nn.Module):
    """face-vid2vid as SadTalker runs it: encode the source once, then render per driving pose.

    ``precision`` (attribute): "fp32" runs everything in float32 (faithful to the original);
    "bf16" runs the generator (the 2-D part after the warp: ~80 % of a frame) under bfloat16
    autocast (convolutions in bf16; PyTorch accumulates the instance-norm statistics in float32)
    — the source encoding, the motion network and the warp stay float32.
    ``optimized`` (attribute, default True): the inference fast path (module docstring) where it
    applies — the motion network always, the generator in fp32; False: the plain modules."""

    def __init__(self, kp: dict | None = None, appearance: dict | None = None,
                 motion: dict | None = None, decoder: dict | None = None):
        super().__init__()
        self.keypoints = KeypointDetector(**(kp or {}))
        self.appearance = AppearanceEncoder(**(appearance or {}))
        self.motion = DenseMotion(**(motion or {}))
        app = self.appearance
        base = app.first.conv.out_channels
        flat = app.lift.out_channels
        gated = base * 2 ** len(app.down)
        self.third = ConvBnAct2d(flat, gated, 3, leaky=True)
        self.fourth = nn.Conv2d(gated, gated, 1)
        self.decoder = SpadeDecoder(**({"channels": gated} | (decoder or {})))
        self.precision = "fp32"
        self.optimized = True
        self._scratch = Scratch()

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source image (B, 3, H, W) → (canonical keypoints (B, K, 3), feature volume)."""
        return self.keypoints(image), self.appearance(image)

    def forward(self, volume: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Feature volume (B, C, D, h, w), x_s and x_d (B, K, 3) → frames (B, 3, 4h, 4w), float32."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        fast = self.optimized and fast_path(volume)
        if fast:
            flow, occlusion = self.motion.infer(volume, kp_source, kp_driving, self._scratch)
        else:
            flow, occlusion = self.motion(volume, kp_source, kp_driving)
        warped = F.grid_sample(volume, flow, align_corners=False)
        b, c, d, h, w = warped.shape
        if fast and self.precision == "fp32":
            x = self.fourth(self.third.infer(warped.reshape(b, c * d, h, w), self._scratch))
            if occlusion.shape[2:] != x.shape[2:]:
                occlusion = F.interpolate(occlusion, size=x.shape[2:], mode="bilinear")
            return self.decoder.infer(x.mul_(occlusion), self._scratch)
        with torch.autocast(volume.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            x = self.fourth(self.third(warped.reshape(b, c * d, h, w)))
            if occlusion.shape[2:] != x.shape[2:]:
                occlusion = F.interpolate(occlusion, size=x.shape[2:], mode="bilinear")
            return self.decoder(x * occlusion).float()
