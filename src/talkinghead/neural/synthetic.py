"""Seeded random-weight checkpoints in the official SadTalker layout (tests, benchmarks).

Given a layout — official key → shape — every tensor is drawn from one ``torch.Generator``
in sorted-key order, so the same (layout, seed) always gives the same weights, here and in any
script that runs the original code on them. Scales keep activations finite: weights
N(0, 1/fan_in), biases N(0, 0.01), batch-norm scale 1 + N(0, 0.01), running variance in
[0.5, 1.5), spectral-norm u and v unit vectors, ``num_batches_tracked`` 0.
"""
from __future__ import annotations

import math

import torch


def _draw(key: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=gen) + 0.5
    noise = torch.randn(shape, generator=gen)
    if key.endswith(("weight_u", "weight_v")):
        return noise / noise.norm()
    if len(shape) >= 2:
        return noise / math.sqrt(max(1, math.prod(shape[1:])))
    if key.endswith("weight") and not key.endswith("kernel"):
        return 1 + 0.1 * noise
    return 0.1 * noise


def random_state(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Official key → seeded random tensor of the given shape (float32; int64 counters)."""
    gen = torch.Generator().manual_seed(seed)
    return {key: _draw(key, tuple(layout[key]), gen) for key in sorted(layout)}
