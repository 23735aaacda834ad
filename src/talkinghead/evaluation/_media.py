"""Private PyAV decoding and encoding for the evaluation, so it depends on nothing in the product.

Times are seconds on the container clock. Frames are (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import AudioError, TalkingHeadError


@dataclass(frozen=True)
class Video:
    """Decoded frames. ``frames``: (T, H, W, 3) uint8 RGB; ``times``: (T,) seconds; ``fps``: nominal."""

    frames: np.ndarray
    times: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def read_video(path: Path, max_seconds: float | None = None) -> Video:
    """Decode every frame of the first video stream (up to ``max_seconds`` of container time)."""
    frames: list[np.ndarray] = []
    times: list[float] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise TalkingHeadError(f"{path} has no video stream; pass a video file.")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else len(frames) / fps
            if max_seconds is not None and t >= max_seconds:
                break
            frames.append(np.ascontiguousarray(frame.to_ndarray(format="rgb24")))
            times.append(t)
    if not frames:
        raise TalkingHeadError(f"{path} holds no decodable video frames.")
    return Video(np.stack(frames), np.asarray(times, dtype=np.float64), fps)


def read_audio(path: Path, sample_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Decode the first audio stream as mono float32 in [-1, 1] at ``sample_rate``; (N,)."""
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError(f"{path} has no audio stream; pass a clip with its sound track.")
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if max_seconds is not None:
        samples = samples[: int(round(max_seconds * sample_rate))]
    return samples


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise TalkingHeadError(f"Could not write {path}; check the folder is writable.")


def read_image(path: Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise TalkingHeadError(f"Could not read the image {path}.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write (N,) float32 mono samples in [-1, 1] as 16-bit PCM WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 mp4 (no audio), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    os.replace(tmp, path)
