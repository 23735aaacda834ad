"""Typed values that flow between stages. Frozen dataclasses holding numpy arrays; no paths."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

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


class SampleReader(Protocol):
    """Where a long recording's samples live instead of memory (``media.load_audio`` gives one):
    ``read(start, stop)`` returns samples [start, stop) as a fresh (n,) float32 array."""

    def read(self, start: int, stop: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Waveform:
    """Mono audio. ``samples``: (N,) float32 in [-1, 1]; ``sample_rate`` in Hz.

    A long decoded recording keeps its samples in a temporary file: ``samples`` is then a
    read-only memory map of it (pages touched stay resident), and ``reader`` reads pieces
    without mapping them. Code that walks the audio should use ``read`` or ``blocks``, which
    cost memory for the piece only, whichever way the samples are held.
    """

    samples: np.ndarray
    sample_rate: int
    reader: SampleReader | None = field(default=None, repr=False, compare=False)

    @property
    def num_samples(self) -> int:
        """N, the number of samples."""
        return len(self.samples)

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_samples / float(self.sample_rate)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) clipped to [0, N): (n,) float32. In-memory audio gives a view
        (do not write into it); file-backed audio a fresh array read from the file."""
        start, stop = max(0, int(start)), min(self.num_samples, int(stop))
        if stop <= start:
            return np.zeros(0, np.float32)
        if self.reader is not None:
            return self.reader.read(start, stop)
        return np.asarray(self.samples).reshape(-1)[start:stop].astype(np.float32, copy=False)

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive (≤ size,) float32 pieces of the samples, in order (see ``read``)."""
        for start in range(0, self.num_samples, size):
            yield self.read(start, start + size)


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
