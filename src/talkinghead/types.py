"""Typed values that flow between stages. Frozen dataclasses holding numpy arrays; no paths."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Portrait:
    """A decoded photo. ``pixels``: (H, W, 3) uint8 RGB, EXIF orientation applied."""

    pixels: np.ndarray

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(frozen=True)
class Waveform:
    """Mono audio. ``samples``: (N,) float32 in [-1, 1]; ``sample_rate`` in Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class Phone:
    """One timed phone. ``label``: ARPAbet without stress (``"AA"``, ``"P"``) or ``"SIL"``; seconds."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class AudioFeatures:
    """Per-hop descriptors of the speech, at ``rate`` hops per second (100: 10 ms hops).

    ``loudness``: (F,) float32, RMS level in dB relative to full scale (about -100..0).
    ``activity``: (F,) float32 in [0, 1], speech presence (0 silence, 1 speech).
    ``pitch``: (F,) float32, fundamental frequency in Hz, 0 where unvoiced.
    ``onsets``: (F,) float32 >= 0, onset strength (positive flux of loudness), 0..~1.
    ``phones``: timed phones covering the utterance (silence labelled ``"SIL"``).
    ``duration``: seconds of audio described.
    """

    rate: float
    loudness: np.ndarray
    activity: np.ndarray
    pitch: np.ndarray
    onsets: np.ndarray
    phones: tuple[Phone, ...]
    duration: float


@dataclass(frozen=True)
class FaceFit:
    """The source face lifted into the linear face model.

    ``mesh``: (478, 3) float32, the detected mesh in source-image pixels (x right, y down,
    z away from the camera, same scale as x). ``neutral``: (478, 3) the same face with the photo's
    own expression removed (lips together, eyes open): the identity. ``basis``: (C, 478, 3)
    displacement per unit of each expression channel, in pixels. ``source_expression``: (C,)
    the channel weights that turn ``neutral`` back into ``mesh``. ``center``: (3,) head pivot in
    pixels; ``iod``: inter-ocular distance in pixels; ``channels``: names of the C channels.
    """

    mesh: np.ndarray
    neutral: np.ndarray
    basis: np.ndarray
    source_expression: np.ndarray
    center: np.ndarray
    iod: float
    channels: tuple[str, ...]
    image_size: tuple[int, int]


@dataclass(frozen=True)
class MotionTrack:
    """Per-frame animation coefficients, the contract between motion and render.

    ``expression``: (T, C) float32, weights of the named ``channels`` (0 = neutral; ~1 = full).
    ``pose``: (T, 6) float32: pitch, yaw, roll in radians relative to the source photo's pose,
    then translation x, y, z in inter-ocular distances. ``blink``: (T,) float32 in [0, 1],
    eyelid closure (1 = closed). ``fps``: frames per second.
    """

    fps: float
    channels: tuple[str, ...]
    expression: np.ndarray
    pose: np.ndarray
    blink: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])


@dataclass(frozen=True)
class ReferenceMotion:
    """Head pose and eyelids measured on a reference video, at its own ``fps``.

    ``pose``: (S, 6) float32, pitch, yaw, roll in radians and x, y, z in inter-ocular distances,
    relative to the video's first frame, in the MotionTrack convention. ``openness``: (S,)
    float32, eye opening (lid gap / eye width, both eyes averaged). Frames without a face are
    filled from their neighbours.
    """

    fps: float
    pose: np.ndarray
    openness: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])
