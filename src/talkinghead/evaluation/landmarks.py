"""Independent 68-point landmarks and 128-d face descriptors with dlib, for measuring only.

dlib is imported here and nowhere in the product, so the measurement does not share the
product's (MediaPipe) blind spots. Point indices follow the iBUG 68-point scheme, 0-based.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from ..errors import UserError

NUM_POINTS = 68
DESCRIPTOR_SIZE = 128


@dataclass(frozen=True)
class Track:
    """Per-frame landmarks of one video.

    ``points``: (T, 68, 2) float64 pixels (x right, y down), NaN where no face.
    ``boxes``: (T, 4) float64 left, top, right, bottom in pixels, NaN where no face.
    ``detected``: (T,) bool, True where the detector found the face in that very frame
    (False where the previous box was re-used or there is no face).
    ``descriptor_frames``: (K,) int indices of the frames that got a descriptor.
    ``descriptors``: (K, 128) float64 dlib face descriptors (NaN rows where no face).
    ``image_size``: (height, width) of the frames.
    """

    points: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray
    descriptor_frames: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int]

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])

    def found(self) -> np.ndarray:
        """(T,) bool: frames with landmarks."""
        return np.isfinite(self.points[:, 0, 0])

    def repeat(self, count: int) -> Track:
        """Frame 0 of this track repeated ``count`` times (a still video); one descriptor kept."""
        first = np.zeros(count, dtype=np.int64)
        return Track(self.points[first], self.boxes[first], self.detected[first],
                     self.descriptor_frames[:1].copy(), self.descriptors[:1].copy(), self.image_size)


def _load_dlib() -> Any:
    """Import dlib, or say how to install it."""
    try:
        import dlib
    except ImportError as exc:
        raise UserError("The evaluation needs dlib: pip install 'talkinghead[eval]' "
                        "(dlib-bin and face-recognition-models).") from exc
    return dlib


MODEL_FILES = ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


def _model_paths() -> tuple[str, str]:
    """Paths of the 68-point shape predictor and the face-recognition ResNet.

    Found beside the installed ``face_recognition_models`` package without importing it: its
    ``__init__`` needs ``pkg_resources``, which setuptools ≥ 81 no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    paths = [Path(folders[0]) / "models" / name for name in MODEL_FILES] if folders else []
    if not paths or not all(path.is_file() for path in paths):
        raise UserError("The evaluation needs face-recognition-models: "
                        "pip install 'talkinghead[eval]'.")
    return str(paths[0]), str(paths[1])


class Landmarker:
    """dlib HOG frontal detector + 68-point shape predictor + face descriptor.

    ``detect_side``: longest side (pixels) of the downscaled copy the detector runs on.
    ``descriptor_every``: compute a descriptor on every k-th frame (0, k, 2k, ...).
    ``max_reuse``: frames in a row for which the previous box stands in for a failed detection.
    """

    def __init__(self, detect_side: int = 320, descriptor_every: int = 5, max_reuse: int = 12):
        dlib = _load_dlib()
        predictor_path, encoder_path = _model_paths()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(predictor_path)
        self._encoder = dlib.face_recognition_model_v1(encoder_path)
        self.detect_side = int(detect_side)
        self.descriptor_every = max(1, int(descriptor_every))
        self.max_reuse = int(max_reuse)

    def detect(self, image: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray | None:
        """Face box (4,) left, top, right, bottom in pixels of (H, W, 3) uint8 RGB ``image``, or None.

        Runs on a copy downscaled to ``detect_side``; then, with a ``previous`` box, on the
        region around it scaled so the face is ~120 px (small faces in large frames), else at
        full size and 2× upsampled. Among several faces picks the one nearest ``previous``,
        else the largest.
        """
        boxes = self._detect_at(image, min(1.0, self.detect_side / max(image.shape[:2])), 0)
        if not len(boxes) and previous is not None:
            boxes = self._detect_near(image, previous)
        for upsample in (0, 1):
            if not len(boxes) and previous is None:
                boxes = self._detect_at(image, 1.0, upsample)
        return _pick_box(boxes, previous) if len(boxes) else None

    def _detect_near(self, image: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """(N, 4) boxes found in the 3× square around ``previous``, in ``image`` pixels."""
        side = _box_side(previous)
        left, top = _region_origin(image, previous)
        region = image[top:top + 3 * side, left:left + 3 * side]
        if min(region.shape[:2]) < 16:
            return np.zeros((0, 4))
        return self._detect_at(region, min(2.0, 120.0 / side), 0) + np.array([left, top, left, top])

    def _detect_at(self, image: np.ndarray, scale: float, upsample: int) -> np.ndarray:
        """(N, 4) boxes in ``image`` pixels from detection on a copy resized by ``scale``."""
        small = image if scale == 1.0 else cv2.resize(
            image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rects = self._detector(np.ascontiguousarray(small), upsample)
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale

    def _shape(self, image: np.ndarray, box: np.ndarray) -> Any:
        """dlib full_object_detection of the 68 points inside ``box``."""
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        return self._predictor(image, rect)

    def points(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) float64 landmark pixels of the face in ``box`` of (H, W, 3) uint8 RGB ``image``."""
        shape = self._shape(np.ascontiguousarray(image), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def descriptor(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(128,) float64 dlib face descriptor of the face in ``box`` (same person: distance < 0.6)."""
        image = np.ascontiguousarray(image)
        shape = self._shape(image, box)
        return np.asarray(self._encoder.compute_face_descriptor(image, shape, 0), dtype=np.float64)

    def track(self, frames: Iterable[np.ndarray]) -> Track:
        """Landmarks of every frame of an iterable of (H, W, 3) uint8 RGB frames; see ``Track``."""
        state = _TrackState()
        size = (0, 0)
        for index, image in enumerate(frames):
            size = (int(image.shape[0]), int(image.shape[1]))
            self._track_frame(image, index, state)
        return state.finish(size)

    def _track_frame(self, image: np.ndarray, index: int, state: _TrackState) -> None:
        """Detect (or re-use the last box), fit the 68 points and, every k-th frame, describe."""
        recent = state.last_box if state.reused < self.max_reuse else None
        box = self.detect(image, recent)
        detected = box is not None
        if box is None and recent is not None:
            box, state.reused = state.last_box, state.reused + 1
        elif detected:
            state.reused = 0
        if box is None:
            state.add(None, None, False)
        else:
            state.last_box = box
            state.add(self.points(image, box), box, detected)
        if index % self.descriptor_every == 0:
            state.add_descriptor(index, None if box is None else self.descriptor(image, box))


class _TrackState:
    """Accumulates per-frame results while tracking."""

    def __init__(self) -> None:
        self.last_box: np.ndarray | None = None
        self.reused = 0
        self.points: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.detected: list[bool] = []
        self.descriptor_frames: list[int] = []
        self.descriptors: list[np.ndarray] = []

    def add(self, points: np.ndarray | None, box: np.ndarray | None, detected: bool) -> None:
        """Record one frame; None for no face."""
        self.points.append(np.full((NUM_POINTS, 2), np.nan) if points is None else points)
        self.boxes.append(np.full(4, np.nan) if box is None else np.asarray(box, np.float64))
        self.detected.append(detected)

    def add_descriptor(self, index: int, descriptor: np.ndarray | None) -> None:
        """Record the descriptor of frame ``index``; None for no face."""
        self.descriptor_frames.append(index)
        self.descriptors.append(np.full(DESCRIPTOR_SIZE, np.nan) if descriptor is None else descriptor)

    def finish(self, size: tuple[int, int]) -> Track:
        """The collected ``Track``."""
        return Track(
            points=np.asarray(self.points, np.float64).reshape(-1, NUM_POINTS, 2),
            boxes=np.asarray(self.boxes, np.float64).reshape(-1, 4),
            detected=np.asarray(self.detected, bool),
            descriptor_frames=np.asarray(self.descriptor_frames, np.int64),
            descriptors=np.asarray(self.descriptors, np.float64).reshape(-1, DESCRIPTOR_SIZE),
            image_size=size)


def _box_side(box: np.ndarray) -> int:
    """Longest side of a (4,) box in whole pixels (at least 1)."""
    return max(1, int(round(max(box[2] - box[0], box[3] - box[1]))))


def _region_origin(image: np.ndarray, box: np.ndarray) -> tuple[int, int]:
    """Top-left (x, y) of the 3× box-side square centred on ``box``, clipped to the image."""
    side = _box_side(box)
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    return max(0, int(round(cx - 1.5 * side))), max(0, int(round(cy - 1.5 * side)))


def _pick_box(boxes: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """The box (4,) nearest ``previous`` (centre distance), else the largest, of (N, 4) boxes."""
    if previous is not None and len(boxes) > 1:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        target = (previous[:2] + previous[2:]) / 2.0
        return boxes[int(np.argmin(np.linalg.norm(centres - target, axis=1)))]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[int(np.argmax(areas))]
