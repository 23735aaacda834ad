"""Exact, faster CPU convolutions for face-vid2vid inference (float32, no autograd).

- :func:`winograd_conv` — a 3×3 (2-D) or 3×3×3 (3-D, Winograd over H and W, direct over
  depth) convolution, stride 1, padding 1, as Winograd F(m×m, 3×3) (Lavin & Gray 2016): per
  m×m output tile, (m+2)² products instead of 9m², done as (m+2)² batched matrix products.
  Equal to the direct convolution up to float rounding, which grows with m (max error on unit
  inputs: m = 2 ≈ the direct one's, m = 4 ≈ 10×, ~1e-5 relative).
- :class:`UpsampledConv` — conv(nearest-upsample(x, s), w) without upsampling: each output
  phase is a small convolution of x by the taps that land on the same source pixel, summed.
- :class:`FourierConv` — a large-kernel 3-D convolution with the W axis done by FFT.
- :func:`fold_batchnorm` — conv → eval-mode BN as one conv; :func:`derived` caches such
  tensors on a module until its weights change; :class:`Scratch` keeps big temporaries
  allocated between calls (fresh multi-MB allocations cost page faults on every frame).
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm

import torch
import torch.nn.functional as F
from torch import nn

#: Interpolation points (and ∞) of F(m×m, 3×3) per output tile size m; for m = 4 the most
#: accurate usual choice in float32 (max error ~1.7e-5 vs 4.6e-5 for 0, ±1, ±2, unit inputs).
WINOGRAD_POINTS = {2: (0, 1, -1), 3: (0, 1, -1, Fraction(1, 2)), 4: (0, 1, -1, Fraction(1, 2), -2)}
#: Output tile size of :func:`winograd_weight` by default.
TILE = 4
#: Elements (float32) of the transformed-input and product buffers per chunk.
INPUT_CHUNK = 1 << 22
PRODUCT_CHUNK = 1 << 23


def _vandermonde(points, k: int) -> list[list[Fraction]]:
    """Rows (1, p, …, p^(k−1)) for each point, then (0, …, 0, 1) for ∞."""
    rows = [[Fraction(p) ** i for i in range(k)] for p in points]
    return rows + [[Fraction(0)] * (k - 1) + [Fraction(1)]]


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse by Gauss–Jordan elimination."""
    n = len(matrix)
    a = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for c in range(n):
        pivot = next(i for i in range(c, n) if a[i][c] != 0)
        a[c], a[pivot] = a[pivot], a[c]
        a[c] = [v / a[c][c] for v in a[c]]
        for i in range(n):
            if i != c and a[i][c] != 0:
                f = a[i][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[c])]
    return [row[n:] for row in a]


def cook_toom(points, m: int, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Winograd F(m, r) matrices (Aᵀ (m, n), G (n, r), Bᵀ (n, n)), n = m + r − 1, float64, with
    y = Aᵀ[(G g) ⊙ (Bᵀ d)] the correlation of d (n) with g (r). Rows of Bᵀ are scaled to
    coprime integers (exact in floats); G takes the inverse scales."""
    n = m + r - 1
    bt = [list(col) for col in zip(*_inverse(_vandermonde(points, n)))]
    g = _vandermonde(points, r)
    for j in range(n):
        nonzero = [v for v in bt[j] if v != 0]
        scale = Fraction(lcm(*(v.denominator for v in nonzero)), gcd(*(v.numerator for v in nonzero)))
        bt[j] = [v * scale for v in bt[j]]
        g[j] = [v / scale for v in g[j]]
    at = [list(col) for col in zip(*_vandermonde(points, m))]
    return tuple(torch.tensor([[float(v) for v in row] for row in x], dtype=torch.float64)
                 for x in (at, g, bt))


_MATRICES = {m: cook_toom(points, m, 3) for m, points in WINOGRAD_POINTS.items()}


def winograd_weight(weight: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """Conv weight (Co, C, 3, 3) or (Co, C, kd, 3, 3) → U = G·w·Gᵀ per kernel slice for
    F(tile×tile, 3×3), as (n², Co, kd·C) float32 (n = tile + 2), the K axis ordered (depth tap,
    channel); computed in float64."""
    g = _MATRICES[tile][1]
    w = weight.double() if weight.dim() == 5 else weight.double().unsqueeze(2)
    co, c, kd = w.shape[:3]
    u = torch.mm(torch.kron(g, g), w.permute(3, 4, 0, 2, 1).reshape(9, -1))  # (n², Co·kd·C)
    return u.view(-1, co, kd * c).float()


class Scratch:
    """Named flat buffers reused across calls (one renderer, one thread at a time)."""

    def __init__(self):
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, numel: int, like: torch.Tensor) -> torch.Tensor:
        """A 1-D tensor of ``numel`` elements, ``like``'s dtype and device (contents undefined)."""
        buf = self._buffers.get(name)
        if (buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device
                or buf.is_inference() != torch.is_inference_mode_enabled()):
            buf = self._buffers[name] = torch.empty(max(numel, 1), dtype=like.dtype, device=like.device)
        return buf[:numel]


def winograd_conv(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None,
                  scratch: Scratch | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """conv2d / conv3d(x, w, bias, padding=1) for x (N, C, H, W) / (N, C, D, H, W), given
    u = winograd_weight(w, m) (w: 3×3 or kd×3×3, kd odd). ``out``: a flat buffer of at least the
    output's size to write it to (used when H and W are multiples of m)."""
    scratch = scratch or Scratch()
    n = round(u.shape[0] ** 0.5)
    m = n - 2
    xs = x if x.dim() == 5 else x.unsqueeze(2)
    nb, c, d, h, w = xs.shape
    co, kd = u.shape[1], u.shape[2] // c
    th, tw = -(-h // m), -(-w // m)
    shape = (nb, co, d, m * th, m * tw)
    if out is not None and (m * th, m * tw) == (h, w):
        y = out[:nb * co * d * h * w].view(shape)
    else:
        y = x.new_empty(shape)
    for b in range(nb):
        xp = _padded(xs[b], kd // 2, m * th + 2, m * tw + 2, scratch)
        _winograd_one(xp, u, bias, y[b], scratch)
    if (m * th, m * tw) != (h, w):
        y = y[..., :h, :w].contiguous()
    return y if x.dim() == 5 else y[:, :, 0]


def _padded(x: torch.Tensor, pd: int, hp: int, wp: int, scratch: Scratch) -> torch.Tensor:
    """(C, D, H, W) → (C, D + 2pd, hp, wp) in a scratch buffer: x at (pd, 1, 1), zeros around."""
    c, d, h, w = x.shape
    xp = scratch.get("padded", c * (d + 2 * pd) * hp * wp, x).view(c, d + 2 * pd, hp, wp)
    xp[:, :pd].zero_()
    xp[:, pd + d:].zero_()
    xp[:, :, :1].zero_()
    xp[:, :, h + 1:].zero_()
    xp[:, :, :, :1].zero_()
    xp[:, :, :, w + 1:].zero_()
    xp[:, pd:pd + d, 1:h + 1, 1:w + 1] = x
    return xp


def _winograd_one(xp: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor,
                  scratch: Scratch) -> None:
    """One padded sample (C, Dp, Hp, Wp) → out (Co, D, m·th, m·tw), in chunks of tile rows (and
    of output channels) so the temporaries stay a few tens of MB."""
    c, dp, hp, wp = xp.shape
    n = round(u.shape[0] ** 0.5)
    m, kd = n - 2, u.shape[2] // c
    th, tw = (hp - 2) // m, (wp - 2) // m
    rows = max(1, min(th, INPUT_CHUNK // (n * n * c * dp * tw)))
    for i0 in range(0, th, rows):
        k = min(rows, th - i0)
        t = k * tw
        tiles = scratch.get("tiles", n * n * c * dp * t, xp).view(n, n, c, dp, k, tw)
        tiles.copy_(xp.as_strided(tiles.shape, (wp, 1, dp * hp * wp, hp * wp, m * wp, m),
                                  xp.storage_offset() + m * i0 * wp))
        v = scratch.get("transformed", 2 * tiles.numel(), xp)
        v = _transform(tiles.view(n, n, -1), _MATRICES[m][2].float(), v[:tiles.numel()], v[tiles.numel():])
        _products_to_output(v.view(n * n, c, dp * t), u, bias, out[:, :, m * i0:m * (i0 + k)], kd, scratch)


def _transform(x: torch.Tensor, t: torch.Tensor, out: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """x (n, n, R) → t·x·tᵀ over the first two axes (t: (p, n)), separably → (p, p, R) in ``out``
    (``work``: room for the (p, n, R) intermediate)."""
    p, n, r = t.shape[0], x.shape[0], x.shape[2]
    half = work[:p * n * r].view(p, n, r)
    torch.bmm(t.expand(n, p, n), x.transpose(0, 1), out=half.transpose(0, 1))
    return torch.matmul(t, half, out=out[:p * p * r].view(p, p, r))


def _products_to_output(v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor,
                        kd: int, scratch: Scratch) -> None:
    """Transformed tiles v (n², C, Dp·T) → out (Co, D, m·k, m·tw), by output-channel chunks:
    Σ over depth taps of batched products (n², Co, C) × (n², C, D·T), then Aᵀ·(·)·A."""
    n = round(u.shape[0] ** 0.5)
    m = n - 2
    co, d, km, wm = out.shape
    k, tw = km // m, wm // m
    t = k * tw
    c = v.shape[1]
    at = _MATRICES[m][0].float()
    step = max(1, min(co, PRODUCT_CHUNK // (n * n * d * t)))
    for o0 in range(0, co, step):
        size = min(step, co - o0)
        prod = scratch.get("products", n * n * size * d * t, v).view(n * n, size, d * t)
        for z in range(kd):
            uz, vz = u[:, o0:o0 + size, z * c:(z + 1) * c], v[:, :, z * t:(z + d) * t]
            if z == 0:
                torch.bmm(uz, vz, out=prod)
            else:
                prod.baddbmm_(uz, vz)
        r = size * d * t
        work = scratch.get("outputs", (m * m + m * n) * r, v)
        y = _transform(prod.view(n, n, r), at, work[:m * m * r], work[m * m * r:])
        y = y.view(m, m, size, d, k, tw).permute(2, 3, 4, 0, 5, 1)
        dst = out[o0:o0 + size].view(size, d, k, m, tw, m)
        if bias is None:
            dst.copy_(y)
        else:
            torch.add(y, bias[o0:o0 + size].view(size, 1, 1, 1, 1, 1), out=dst)


def _axis_maps(scale: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    """For a 3-tap kernel on a ``scale``× nearest-upsampled axis: the distinct maps tap t ∈
    {−1, 0, 1} → source offset ⌊(p + t) / scale⌋ over the phases p, and each phase's map."""
    maps, index = [], []
    for p in range(scale):
        m = tuple((p + t) // scale for t in (-1, 0, 1))
        if m not in maps:
            maps.append(m)
        index.append(maps.index(m))
    return maps, index


def _axis_matrix(m: tuple[int, int, int]) -> tuple[int, torch.Tensor]:
    """Map → (lowest source offset, S (offsets, 3) float64 with S[o − lo, t] = 1 where t reads o)."""
    lo = min(m)
    s = torch.zeros(max(m) - lo + 1, 3, dtype=torch.float64)
    for t, o in enumerate(m):
        s[o - lo, t] = 1
    return lo, s


class UpsampledConv:
    """conv(nearest-upsample(x, scale) over H, W; w, bias, padding 1) for a 3×3 (2-D) or
    kd×3×3 (3-D, depth padding kd//2, not upsampled) kernel, as one small convolution per
    distinct output phase (phases reading the same source offsets share it)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, scale: int):
        maps, self.index = _axis_maps(scale)
        self.scale = scale
        self.out_channels = weight.shape[0]
        self.depth_pad = (weight.shape[2] // 2,) if weight.dim() == 5 else ()
        axes = [_axis_matrix(m) for m in maps]
        w = weight.double()
        self.convs = {}  # (row map, col map) → (F.pad amounts, kernel, bias)
        for i, (rlo, sr) in enumerate(axes):
            for j, (clo, sc) in enumerate(axes):
                k = torch.einsum("ai,oc...ij,bj->oc...ab", sr, w, sc).to(weight.dtype)
                pad = (-clo, clo + sc.shape[0] - 1, -rlo, rlo + sr.shape[0] - 1) + self.depth_pad * 2
                self.convs[i, j] = (pad, k.contiguous(), bias)

    def __call__(self, x: torch.Tensor, relu: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, C, [D,] h, w) → (N, Co, [D,] s·h, s·w); ``relu`` applies ReLU on the way; ``out``:
        a flat buffer of at least that size to write the result to."""
        conv = F.conv3d if x.dim() == 5 else F.conv2d
        phases = {key: conv(F.pad(x, pad), k, b) for key, (pad, k, b) in self.convs.items()}
        s = self.scale
        *lead, h, w = next(iter(phases.values())).shape
        shape = (*lead, h, s, w, s)
        like = next(iter(phases.values()))  # the convolutions' dtype (bf16 under autocast)
        y = like.new_empty(shape) if out is None else out[:torch.Size(shape).numel()].view(shape)
        for p in range(s):
            for q in range(s):
                y[..., p, :, q] = phases[self.index[p], self.index[q]]
        y = y.view(*lead, h * s, w * s)
        return y.relu_() if relu else y


class FourierConv:
    """conv3d(x, w, bias, padding k // 2) for x of width ``width``, the W axis by FFT: per
    frequency of a real FFT over W (length ≥ width + kw // 2: no wrap-around), a complex
    convolution over (D, H), all run as one grouped real conv2d with [Re; Im] channels. For
    the 7×7×7 mask kernel: ~3× fewer multiply-adds, and fewer rounded sums than direct."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, width: int):
        o, c, kd, kh, kw = weight.shape
        p = kw // 2
        self.length = width + p + (width + p) % 2
        taps = weight.new_zeros(o, c, kd, kh, self.length, dtype=torch.float64)
        for t in range(kw):
            taps[..., (t - p) % self.length] = weight[..., t].double()
        spec = torch.conj(torch.fft.rfft(taps, dim=-1))                     # (O, C, kd, kh, F)
        re, im = spec.real, spec.imag
        blocks = torch.stack([torch.cat([re, -im], 1), torch.cat([im, re], 1)])  # (2, O, 2C, kd, kh, F)
        self.bins = spec.shape[-1]
        self.weight = blocks.permute(5, 0, 1, 2, 3, 4).reshape(-1, 2 * c, kd, kh).to(weight.dtype).contiguous()
        self.bias, self.out_channels, self.padding = bias, o, (kd // 2, kh // 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, c, d, h, w = x.shape
        spec = torch.view_as_real(torch.fft.rfft(x, n=self.length, dim=-1))      # (N, C, D, H, F, 2)
        spec = spec.permute(0, 4, 5, 1, 2, 3).reshape(n, self.bins * 2 * c, d, h)
        y = F.conv2d(spec, self.weight, padding=self.padding, groups=self.bins)  # (N, F·2·O, D, H)
        y = y.view(n, self.bins, 2, self.out_channels, d, h).permute(0, 3, 4, 5, 1, 2).contiguous()
        out = torch.fft.irfft(torch.view_as_complex(y), n=self.length, dim=-1)[..., :w]
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1, 1)


def fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None,
                   bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """conv(·, weight, bias) followed by eval-mode ``bn`` → one conv's (weight, bias), computed
    in float64."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    shift = bn.bias.double() - bn.running_mean.double() * scale
    b = shift if bias is None else bias.double() * scale + shift
    w = weight.double() * scale.view(-1, *[1] * (weight.dim() - 1))
    return w.to(weight.dtype).contiguous(), b.to(weight.dtype)


def derived(module: nn.Module, name: str, build, *sources: torch.Tensor):
    """``build()`` cached on ``module`` under ``name`` until one of ``sources`` (its weights)
    is replaced, modified in place, moved or cast."""
    key = tuple((id(t), t.data_ptr(), -1 if t.is_inference() else t._version, t.dtype, t.device)
                for t in sources)
    cache = module.__dict__.setdefault("_derived", {})
    hit = cache.get(name)
    if hit is None or hit[0] != key:
        with torch.no_grad():
            hit = cache[name] = (key, build())
    return hit[1]


def fast_path(x: torch.Tensor) -> bool:
    """Whether the optimized inference path applies: CPU, float32, no autograd, no autocast."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu"))


def single_output_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv2d(x, weight (1, C, k, k), bias, padding k // 2) as one matrix product (the k² taps'
    channel sums, (N, k², H·W)) and k² shifted additions: oneDNN is slow with one output channel."""
    n, c, h, w = x.shape
    k = weight.shape[-1]
    p = k // 2
    taps = torch.matmul(weight.reshape(c, k * k).t(), x.reshape(n, c, h * w))
    taps = F.pad(taps.view(n, k, k, h, w), (p, p, p, p))
    out = x.new_zeros(n, 1, h, w) if bias is None else bias.view(1, 1, 1, 1).repeat(n, 1, h, w)
    for a in range(k):
        for b in range(k):
            out[:, 0] += taps[:, a, b, a:a + h, b:b + w]
    return out
