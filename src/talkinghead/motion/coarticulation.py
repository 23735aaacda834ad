"""Coarticulation by dominance functions (Cohen & Massaro): every phone pulls each mouth
target towards its own value with a strength that decays with the distance in time from the
phone's core; the mouth at time t is the dominance-weighted mean of all targets.

Anticipation is wider than carry-over (lips round and close ahead of the sound).
"""
from __future__ import annotations

import numpy as np

from ..types import Phone
from .visemes import TARGETS, phone_table

# decay rates, 1/s, per target group (jaw, closure, shape): (before the phone, after it)
RATES = np.array([[22.0, 26.0], [40.0, 46.0], [9.0, 14.0]], dtype=np.float32)
CORE = 0.25
BLOCK = 1024
REACH_S = 0.8


def mouth_targets(phones: tuple[Phone, ...], times: np.ndarray) -> np.ndarray:
    """(T, K) blended mouth targets at ``times`` (T,) seconds, K = len(TARGETS)."""
    out = np.zeros((len(times), len(TARGETS)), dtype=np.float32)
    if not phones or len(times) == 0:
        return out
    starts = np.array([p.start for p in phones], dtype=np.float32)
    ends = np.array([p.end for p in phones], dtype=np.float32)
    targets, strength = phone_table([p.label for p in phones], ends - starts)
    dur = ends - starts
    core_lo, core_hi = starts + CORE * dur, ends - CORE * dur
    groups = np.array([0, 1] + [2] * (len(TARGETS) - 2))
    before, after = RATES[groups, 0], RATES[groups, 1]
    for b in range(0, len(times), BLOCK):
        t = times[b:b + BLOCK].astype(np.float32)
        lo = int(np.searchsorted(ends, t[0] - REACH_S))
        hi = int(np.searchsorted(starts, t[-1] + REACH_S)) + 1
        sl = slice(lo, hi)
        ahead = np.maximum(core_lo[sl][None, :] - t[:, None], 0)[..., None]
        behind = np.maximum(t[:, None] - core_hi[sl][None, :], 0)[..., None]
        dom = strength[sl][None] * np.exp(-(ahead * before + behind * after))
        out[b:b + BLOCK] = (dom * targets[sl][None]).sum(axis=1) / np.maximum(dom.sum(axis=1), 1e-6)
    return out
