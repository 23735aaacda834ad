"""The ``sadtalker`` backend end to end: photo + speech → frames, with the official networks.

    photo ─ MediaPipe mesh ─ framing (crop mode) ─ size×size crop ─ 5 points ─ 224 alignment
          ─ ResNet-50 → 257 coefficients → source (exp 64, angles 3, translation 3[, crop 3])
    speech ─ mel windows ─ ExpNet (+ blinks) / PoseVAE (style, seeded z) → (T, 70|73)
          ─ MappingNet per frame (27-frame windows) → keypoints ─ face-vid2vid (source encoded
          once) → size×size frames ─ resized / pasted into the output picture

Where it differs from SadTalker: the crop is our framing (MediaPipe mesh, ``plan_framing``),
not RetinaFace + the FFHQ-style quad, so the face sits a little differently in the crop; the
five points come from the 478-point mesh, not a 68-point detector; full mode pastes the
animated crop back with a feathered square mask instead of Poisson blending; all randomness
(blinks, pose latents) is seeded. Frames are produced one at a time (memory flat in length).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import Config
from ..errors import NoFaceError, UserError
from ..face.crop import Framing, plan_framing
from ..face.tracking import fill_gaps, track_meshes, track_video
from ..media import iter_video_frames, probe_video
from ..motion.reference import looped, reference_blink
from . import audio
from .align import align_face, five_points
from .checkpoints import SadTalkerNets, checkpoint_paths, load_mapping, load_sadtalker
from .coefficients import motion_coefficients
from .facevid2vid import PRECISIONS, bf16_supported
from .mapping import RADIUS, bins_to_degrees, transform_keypoints

#: Keyword arguments of :class:`SadTalkerNets`; empty = the official sizes. Tests shrink it.
ARCHITECTURE: dict = {}
FPS = 25
AXES = ("yaw", "pitch", "roll")
MAPPING_CHUNK = 64
FEATHER = 0.08
#: Renderer precision when neither the ``precision`` argument nor $TALKINGHEAD_PRECISION says:
#: "fp32" (bit-faithful to SadTalker), "bf16" (the generator in bfloat16, ~2× faster on CPUs
#: with AVX-512 BF16, not verified on the real weights) or "auto" (bf16 where native, else fp32).
DEFAULT_PRECISION = "fp32"
PRECISION_ENV = "TALKINGHEAD_PRECISION"


@dataclass(frozen=True)
class SourceFace:
    """The photo as the networks see it: ``crop`` (S, S, 3) uint8, ``aligned`` (224, 224, 3)
    uint8, ``coeffs`` (70 or 73,) float32 = exp 64, angles 3, translation 3[, crop params 3]."""

    crop: np.ndarray
    aligned: np.ndarray
    coeffs: np.ndarray


@dataclass
class Plan:
    """One video: the source, driving ``coeffs`` (T, C) at the networks' 25 fps, the output
    ``fps``, free-view ``angles`` (degrees, (num_frames,) each, overriding MappingNet's) and the
    ``compose`` step to the output picture."""

    source: SourceFace
    coeffs: np.ndarray
    compose: "Compositor"
    angles: dict[str, np.ndarray] = field(default_factory=dict)
    fps: float = FPS

    @property
    def num_frames(self) -> int:
        """Output frames: T at 25 fps, as many as cover the same time at another ``fps``."""
        return output_frames(int(self.coeffs.shape[0]), self.fps)

    def positions(self) -> np.ndarray:
        """(num_frames,) where each output frame falls in the 25 fps sequence, in its frames."""
        return np.minimum(np.arange(self.num_frames) * (FPS / self.fps), self.coeffs.shape[0] - 1)


def output_frames(count: int, fps: float) -> int:
    """Frames at ``fps`` covering ``count`` frames at 25 fps."""
    return count if fps == FPS else max(1, int(round(count * fps / FPS)))


class Compositor:
    """Network frames (S, S, 3) → output frames: resized for the square modes, pasted back
    with a feathered mask for full / extfull."""

    def __init__(self, net: Framing, canvas: Framing | None, side: int):
        self.canvas = canvas
        self.side = side
        if canvas is not None:
            self._box, self._mask = _paste_geometry(net, canvas)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        if self.canvas is None:
            return self.side, self.side
        return self.canvas.image.shape[1], self.canvas.image.shape[0]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.canvas is None:
            if frame.shape[0] == self.side:
                return frame
            interp = cv2.INTER_AREA if frame.shape[0] > self.side else cv2.INTER_CUBIC
            return cv2.resize(frame, (self.side, self.side), interpolation=interp)
        x0, y0, side = self._box
        patch = cv2.resize(frame, (side, side), interpolation=cv2.INTER_CUBIC)
        out = self.canvas.image.copy()
        h, w = out.shape[:2]
        sx0, sy0, sx1, sy1 = max(0, -x0), max(0, -y0), min(side, w - x0), min(side, h - y0)
        region = out[y0 + sy0:y0 + sy1, x0 + sx0:x0 + sx1].astype(np.float32)
        m = self._mask[sy0:sy1, sx0:sx1, None]
        blended = region * (1 - m) + patch[sy0:sy1, sx0:sx1].astype(np.float32) * m
        out[y0 + sy0:y0 + sy1, x0 + sx0:x0 + sx1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out


def _paste_geometry(net: Framing, canvas: Framing) -> tuple[tuple[int, int, int], np.ndarray]:
    """Where the network crop lies in the canvas (x0, y0, side) and its (side, side) mask:
    1 inside, a linear ramp over the outer FEATHER of each edge."""
    extent = net.image.shape[0] / net.scale[0]
    x0 = int(round((net.offset[0] - canvas.offset[0]) * canvas.scale[0]))
    y0 = int(round((net.offset[1] - canvas.offset[1]) * canvas.scale[1]))
    side = max(2, int(round(extent * canvas.scale[0])))
    ramp = np.minimum(np.arange(side) + 0.5, side - 0.5 - np.arange(side)) / max(1.0, FEATHER * side)
    ramp = np.clip(ramp, 0, 1).astype(np.float32)
    return (x0, y0, side), np.minimum(ramp[:, None], ramp[None, :])


def free_view(values: tuple[float, ...], count: int) -> np.ndarray | None:
    """Degrees for each of ``count`` frames: one value held; several traversed at constant
    angular speed from the first to the last (SadTalker's schedule); None when empty."""
    if not values:
        return None
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 1 or count < 2:
        return np.full(count, v[0], dtype=np.float32)
    path = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(v)))])
    if path[-1] == 0:
        return np.full(count, v[0], dtype=np.float32)
    at = np.linspace(0.0, path[-1], count)
    return np.interp(at, path, v).astype(np.float32)


def check_supported(config: Config) -> None:
    """UserError for options this backend does not offer (yet)."""
    m = config.motion
    unsupported = [name for name, on in (
        ("--emotion", m.emotion != "neutral"), ("--transcript", config.transcript),
        (f"--gaze {m.gaze} (ExpNet moves the eyes)", m.gaze != "natural")) if on]
    if unsupported:
        raise UserError(f"the sadtalker backend does not support {', '.join(unsupported)}; "
                        "drop them or use --backend embedded")


def model_size(config: Config) -> int:
    """Network resolution: 512 when the output asks for 512 px or more, else 256."""
    return 512 if (config.face.size or 256) >= 512 else 256


class SadTalkerBackend:
    """The official SadTalker networks loaded from ``checkpoints_dir`` at ``size`` (256/512);
    ``full``: the 73-input MappingNet of full mode; ``precision``: "fp32" | "bf16" | "auto"
    (None: $TALKINGHEAD_PRECISION, else DEFAULT_PRECISION) for the renderer's generator; bf16
    where the hardware lacks it falls back to fp32. Loading is strict (CheckpointError)."""

    def __init__(self, checkpoints_dir: str | Path, size: int = 256, device: str = "cpu",
                 full: bool = False, precision: str | None = None):
        weights, mapping = checkpoint_paths(Path(checkpoints_dir), size, full)
        self.size, self.device, self.full = size, torch.device(device), full
        self.precision = resolve_precision(precision, self.device)
        self.nets = load_sadtalker(weights, SadTalkerNets(**ARCHITECTURE))
        self.nets.renderer.precision = self.precision
        self.nets.renderer.to(self.device)  # the audio networks are small: they stay on the CPU
        self.nets.recon.to(self.device)
        self.mapping = load_mapping(mapping).to(self.device)

    @torch.no_grad()
    def source_face(self, crop: np.ndarray, mesh: np.ndarray) -> SourceFace:
        """Crop (S, S, 3) uint8 and its mesh (478, ≥2) in crop pixels → :class:`SourceFace`."""
        aligned, params = align_face(crop, five_points(mesh))
        face = torch.from_numpy(aligned.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        full = self.nets.recon(face.to(self.device))[0].cpu().numpy()
        coeffs = np.concatenate([full[80:144], full[224:227], full[254:257]])
        if self.full:
            coeffs = np.concatenate([coeffs, params[2:]])
        return SourceFace(crop, aligned, coeffs.astype(np.float32))

    def coefficients(self, samples: np.ndarray, source: SourceFace, config: Config) -> np.ndarray:
        """16 kHz speech (N,) → driving coefficients (T, 70|73), T = N // 640."""
        mels = audio.speech_windows(samples)
        count = mels.shape[0]
        if count == 0:
            raise UserError("the audio is shorter than one video frame (40 ms)")
        m = config.motion
        ref_pose = self.reference_pose(m.ref_pose, count) if m.ref_pose else None
        ref_blink = reference_blink(track_video(m.ref_blink), FPS, count) if m.ref_blink else None
        with torch.no_grad():
            return motion_coefficients(
                self.nets.expnet, self.nets.posevae, mels, source.coeffs,
                style=m.pose_style, seed=config.seed, blink=m.blink,
                expression_scale=m.expression_scale, head_motion_scale=m.head_motion_scale,
                still=m.still, ref_pose=ref_pose, ref_blink=ref_blink)

    def reference_pose(self, video: str, count: int) -> np.ndarray:
        """(count, 6) pose coefficients (angles, translation) of the face in ``video``, read by
        the 3DMM network from each frame's crop as SadTalker does, at 25 fps, looped. Two
        passes over the video (meshes, then crops), so that no more than one frame is held."""
        fps = probe_video(video).fps or FPS
        needed = int(np.ceil(count * fps / FPS)) + 1

        def frames():
            return (f for _, f in zip(range(needed), iter_video_frames(video)))

        meshes = track_meshes(frames())
        poses = np.full((len(meshes), 6), np.nan, np.float32)
        for i, (frame, mesh) in enumerate(zip(frames(), meshes)):
            if np.isfinite(mesh).all():
                crop = plan_framing(frame, mesh, "crop", self.size, matte=False, glasses=False)
                poses[i] = self.source_face(crop.image, crop.map_points(mesh)).coeffs[64:70]
        if not np.isfinite(poses).any():
            raise NoFaceError(f"no face found in the reference video {video}")
        return looped(fill_gaps(poses), fps, FPS, count)

    def prepare(self, pixels: np.ndarray, mesh: np.ndarray, samples: np.ndarray,
                config: Config) -> Plan:
        """Photo (H, W, 3) uint8, its mesh (478, 3) and 16 kHz speech → a :class:`Plan`."""
        check_supported(config)
        mode = config.face.preprocess
        full = mode in ("full", "extfull")
        net_mode = {"full": "crop", "extfull": "extcrop"}.get(mode, mode)
        net = plan_framing(pixels, mesh, net_mode, self.size, matte=False, glasses=False)
        canvas = plan_framing(pixels, mesh, mode, matte=False, glasses=False) if full else None
        source = self.source_face(net.image, net.map_points(mesh))
        coeffs = self.coefficients(samples, source, config)
        count = output_frames(len(coeffs), config.video.fps)
        angles = {k: v for k in AXES if (v := free_view(getattr(config.motion, k), count)) is not None}
        side = config.face.size or self.size
        return Plan(source, coeffs, Compositor(net, canvas, side // 2 * 2), angles, config.video.fps)

    @torch.inference_mode()
    def frames(self, plan: Plan) -> Iterator[np.ndarray]:
        """Every output frame (H, W, 3) uint8, one at a time; the source is encoded once.
        MappingNet runs on the 25 fps coefficients, as trained; at another output fps its
        keypoint motion (angles in degrees, translation, deltas) is interpolated linearly."""
        dev = self.device
        image = torch.from_numpy(plan.source.crop.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        canonical, volume = self.nets.renderer.encode(image.to(dev))
        src = torch.from_numpy(plan.source.coeffs)[None, :, None].expand(1, -1, 2 * RADIUS + 1)
        kp_source = transform_keypoints(canonical, self.mapping(src.to(dev)))
        count, positions = plan.coeffs.shape[0], plan.positions()
        for start in range(0, count, MAPPING_CHUNK):
            stop = min(start + MAPPING_CHUNK, count)
            motion = _in_degrees(self.mapping(_windows(plan.coeffs, start, stop + 1).to(dev)))
            for k in np.nonzero((positions >= start) & (positions < stop))[0]:
                one = _interpolated(motion, float(positions[k]) - start)
                angles = {a: one[a] for a in AXES}
                angles.update({a: torch.tensor([float(v[k])], device=dev) for a, v in plan.angles.items()})
                kp = transform_keypoints(canonical, one, angles)
                out = self.nets.renderer(volume, kp_source, kp)[0]
                yield plan.compose(_to_uint8(out))


def resolve_device(choice: str) -> str:
    """"auto" | "cpu" | "cuda" → the torch device to run on: "cuda" for auto when torch sees a
    CUDA GPU; ``UserError`` when "cuda" is asked for and there is none."""
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA GPU here (a CPU-only build of torch, "
                        "or no driver); use --device cpu")
    return choice


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """"fp32" | "bf16" | "auto" | None (→ $TALKINGHEAD_PRECISION or DEFAULT_PRECISION) → the
    renderer precision: "fp32", or "bf16" where the device runs it natively."""
    choice = (precision or os.environ.get(PRECISION_ENV) or DEFAULT_PRECISION).strip().lower()
    if choice not in PRECISIONS + ("auto",):
        raise UserError(f"unknown precision {choice!r} (from {'the argument' if precision else PRECISION_ENV}); "
                        f"use one of {', '.join(PRECISIONS + ('auto',))}")
    if choice == "fp32" or not bf16_supported(device):
        return "fp32"
    return "bf16"


def _windows(coeffs: np.ndarray, start: int, stop: int) -> torch.Tensor:
    """MappingNet inputs for frames start..stop−1: (n, C, 27), indices clamped to the sequence."""
    count = coeffs.shape[0]
    frames = np.arange(start, min(stop, count))
    index = np.clip(frames[:, None] + np.arange(-RADIUS, RADIUS + 1)[None, :], 0, count - 1)
    return torch.from_numpy(np.ascontiguousarray(coeffs[index].transpose(0, 2, 1)))


def _in_degrees(motion: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MappingNet's output with yaw/pitch/roll as degrees (n,) instead of bin logits."""
    return {k: bins_to_degrees(v) if k in AXES else v for k, v in motion.items()}


def _interpolated(motion: dict[str, torch.Tensor], at: float) -> dict[str, torch.Tensor]:
    """Each (n, ...) entry of ``motion`` at fractional row ``at`` (linear), as (1, ...)."""
    row = int(np.floor(at))
    weight = at - row
    if weight == 0.0 or row + 1 >= next(iter(motion.values())).shape[0]:
        return {k: v[row:row + 1] for k, v in motion.items()}
    return {k: v[row:row + 1] * (1.0 - weight) + v[row + 1:row + 2] * weight for k, v in motion.items()}


def _to_uint8(frame: torch.Tensor) -> np.ndarray:
    """(3, S, S) float in [0, 1] → (S, S, 3) uint8."""
    return (frame.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
