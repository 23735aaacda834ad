"""Phones → mouth targets: per-phone lip aperture and shape, and how strongly each phone
imposes them on its neighbours (dominance), for coarticulation.

Target channels (``TARGETS``): ``jaw_open``, ``closure`` (lips sealed whatever the jaw does;
becomes the model's ``lip_close`` channel as closure · jaw), and the lip shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGETS = ("jaw_open", "closure", "lip_press", "lip_funnel", "lip_pucker", "lip_stretch",
           "upper_lip_raise", "lower_lip_depress")


@dataclass(frozen=True)
class Viseme:
    """Targets for one phone and their dominance strengths (jaw, closure, shape)."""

    targets: dict[str, float]
    strength: tuple[float, float, float] = (1.6, 1.0, 1.0)


_V = Viseme
BILABIAL = _V({"jaw_open": 0.1, "closure": 1.0, "lip_press": 0.45}, (0.8, 6.0, 2.0))
VISEMES: dict[str, Viseme] = {
    "SIL": _V({}, (1.0, 1.0, 1.0)),
    "P": BILABIAL, "B": BILABIAL, "M": BILABIAL,
    "F": _V({"jaw_open": 0.1, "closure": 0.6, "upper_lip_raise": 0.5}, (1.5, 4.0, 2.0)),
    "V": _V({"jaw_open": 0.1, "closure": 0.6, "upper_lip_raise": 0.5}, (1.5, 4.0, 2.0)),
    "TH": _V({"jaw_open": 0.2}, (0.6, 1.0, 0.5)), "DH": _V({"jaw_open": 0.2}, (0.6, 1.0, 0.5)),
    "T": _V({"jaw_open": 0.2}, (0.5, 1.0, 0.4)), "D": _V({"jaw_open": 0.2}, (0.5, 1.0, 0.4)),
    "N": _V({"jaw_open": 0.2}, (0.5, 1.0, 0.4)), "L": _V({"jaw_open": 0.3}, (0.5, 1.0, 0.4)),
    "S": _V({"jaw_open": 0.1, "lip_stretch": 0.5}, (1.0, 1.0, 0.8)),
    "Z": _V({"jaw_open": 0.1, "lip_stretch": 0.5}, (1.0, 1.0, 0.8)),
    "SH": _V({"jaw_open": 0.16, "lip_funnel": 0.9}, (1.0, 1.0, 1.5)),
    "ZH": _V({"jaw_open": 0.16, "lip_funnel": 0.9}, (1.0, 1.0, 1.5)),
    "CH": _V({"jaw_open": 0.16, "lip_funnel": 0.8}, (1.0, 1.0, 1.5)),
    "JH": _V({"jaw_open": 0.16, "lip_funnel": 0.8}, (1.0, 1.0, 1.5)),
    "K": _V({"jaw_open": 0.3}, (0.4, 1.0, 0.3)), "G": _V({"jaw_open": 0.3}, (0.4, 1.0, 0.3)),
    "NG": _V({"jaw_open": 0.25}, (0.4, 1.0, 0.3)), "HH": _V({"jaw_open": 0.35}, (0.2, 1.0, 0.2)),
    "Y": _V({"jaw_open": 0.2, "lip_stretch": 0.3}, (0.6, 1.0, 0.6)),
    "R": _V({"jaw_open": 0.2, "lip_funnel": 0.6}, (0.8, 1.0, 1.2)),
    "W": _V({"jaw_open": 0.08, "lip_pucker": 1.0}, (1.2, 1.0, 2.0)),
    "AA": _V({"jaw_open": 0.85}), "AE": _V({"jaw_open": 0.75, "lip_stretch": 0.3}),
    "AH": _V({"jaw_open": 0.6}), "AO": _V({"jaw_open": 0.7, "lip_funnel": 0.4}),
    "AW": _V({"jaw_open": 0.7, "lip_funnel": 0.3}), "AY": _V({"jaw_open": 0.75}),
    "EH": _V({"jaw_open": 0.55, "lip_stretch": 0.3}), "EY": _V({"jaw_open": 0.45, "lip_stretch": 0.4}),
    "ER": _V({"jaw_open": 0.3, "lip_funnel": 0.6}), "IH": _V({"jaw_open": 0.35, "lip_stretch": 0.35}),
    "IY": _V({"jaw_open": 0.25, "lip_stretch": 0.7}), "OW": _V({"jaw_open": 0.45, "lip_funnel": 0.9}, (1.0, 1.0, 1.3)),
    "OY": _V({"jaw_open": 0.5, "lip_funnel": 0.6}), "UH": _V({"jaw_open": 0.3, "lip_funnel": 0.6}),
    "UW": _V({"jaw_open": 0.15, "lip_pucker": 1.0}, (1.0, 1.0, 1.6)),
}
UNKNOWN = _V({"jaw_open": 0.3}, (0.5, 1.0, 0.5))
LONG_PAUSE_S = 0.25


def phone_table(labels: list[str], durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets (P, K) and dominance strengths (P, K) for phones, K = len(TARGETS).

    A pause of at least LONG_PAUSE_S dominates its surroundings (the mouth comes to rest);
    a short one barely does.
    """
    groups = np.array([0, 1] + [2] * (len(TARGETS) - 2))
    targets = np.zeros((len(labels), len(TARGETS)), dtype=np.float32)
    strength = np.zeros_like(targets)
    for i, (label, dur) in enumerate(zip(labels, durations)):
        v = VISEMES.get(label, UNKNOWN)
        for k, name in enumerate(TARGETS):
            targets[i, k] = v.targets.get(name, 0.0)
        strength[i] = np.asarray(v.strength, dtype=np.float32)[groups]
        if label == "SIL":
            strength[i] = 4.0 if dur >= LONG_PAUSE_S else 0.3
    return targets, strength
