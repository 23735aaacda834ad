"""Face detection and the 478-point mesh (MediaPipe face detection + face mesh with iris).

The models ship inside the ``mediapipe`` wheel; nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import NoFaceError
from ..quiet import native_stderr_silenced
from . import regions as R

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger(__name__)

DETECT_MAX_SIDE = 1280
MESH_CROP_SIDE = 640
MIN_FACE_PX = 48
"""Faces narrower than this (pixels) are refused: the mesh is unreliable there and the crop
(never upscaled) would be a thumbnail."""
UPRIGHT_FROM_DEG = 60.0
"""A face whose eyes' line is tilted more than this lies on its side: the photo is turned."""
_NO_FACE = ("no face found in the image: use a photo with one clearly visible, roughly frontal "
            f"face at least {MIN_FACE_PX} px wide (eyes and mouth visible)")


@dataclass(frozen=True)
class FaceBox:
    """A detected face: ``x, y, w, h`` in image pixels, ``score`` in [0, 1]."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return self.w * self.h


LAZY_MEDIAPIPE_MODULES = ("python.solutions.drawing_utils", "python.solutions.drawing_styles",
                          "tasks.python")
"""MediaPipe modules we never use, loaded only when someone reads a name of theirs: the drawing
helpers import matplotlib.pyplot (~0.4 s a run); the Tasks API (audio, text, vision) ~0.1 s,
with ``sounddevice``, which runs ``ctypes.util.find_library`` (subprocesses)."""


def solutions():
    """``mediapipe.python.solutions``, imported once, without LAZY_MEDIAPIPE_MODULES.
    MediaPipe's import keeps the error of its failed optional ``sounddevice`` import (when the
    Tasks API does load), whose traceback would pin the frames of whoever imported it first (a
    pipeline run and its speech) for the life of the process: that traceback is dropped."""
    if "mediapipe.python.solutions" not in sys.modules:
        _defer_unused_modules()
    from mediapipe.python import solutions as mp_solutions

    for name in LAZY_MEDIAPIPE_MODULES:
        full = f"mediapipe.{name}"
        parent, _, leaf = full.rpartition(".")
        if parent == mp_solutions.__name__ and not hasattr(mp_solutions, leaf) and full in sys.modules:
            setattr(mp_solutions, leaf, sys.modules[full])

    record = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
    error = getattr(record, "sd_error", None)
    if error is not None:
        error.__traceback__ = None
    return mp_solutions


def _defer_unused_modules() -> None:
    """Put stand-ins for LAZY_MEDIAPIPE_MODULES in ``sys.modules``: each loads the real module
    or package (found by path, so that no mediapipe package runs first) on its first attribute
    access."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return
    root = Path(next(iter(spec.submodule_search_locations)))
    for name in LAZY_MEDIAPIPE_MODULES:
        full, path = f"mediapipe.{name}", root / name.replace(".", "/")
        if full in sys.modules:
            continue
        if (path / "__init__.py").is_file():
            stand_in = _deferred_module(full, path / "__init__.py", path)
            _package_above(path).__dict__[path.name] = stand_in
        elif path.with_suffix(".py").is_file():
            stand_in = _deferred_module(full, path.with_suffix(".py"))
        else:
            continue
        sys.modules[full] = stand_in


def _package_above(path: Path) -> types.ModuleType:
    """The package holding the mediapipe package at ``path`` (``mediapipe.tasks`` for
    .../mediapipe/tasks/python), which must be a plain namespace (a docstring only) when it is
    not imported yet: an empty package module with its folder as path stands in for it, so
    that ``mediapipe``'s own ``import mediapipe.tasks.python as tasks`` finds the deferred
    package under it."""
    parent = f"mediapipe.{path.parent.name}"
    if parent not in sys.modules:
        module = types.ModuleType(parent)
        module.__file__, module.__path__ = str(path.parent / "__init__.py"), [str(path.parent)]
        sys.modules[parent] = module
    return sys.modules[parent]


def _deferred_module(full: str, source: Path, package: Path | None = None) -> types.ModuleType:
    """A module named ``full`` that runs ``source`` the first time one of its names is read;
    for a ``package`` (its folder), the real package then takes the stand-in's place in
    ``sys.modules`` (its own relative imports need it there), and submodules import as usual."""
    stand_in = types.ModuleType(full)
    stand_in.__file__ = str(source)
    if package is not None:
        stand_in.__path__ = [str(package)]
    loaded: list[types.ModuleType] = []

    def load(attr: str):
        if not loaded:
            spec = importlib.util.spec_from_file_location(
                full, source, submodule_search_locations=None if package is None else [str(package)])
            real = importlib.util.module_from_spec(spec)
            loaded.append(real)
            if package is not None:
                sys.modules[full] = real
            try:
                spec.loader.exec_module(real)
            except BaseException:
                loaded.clear()
                sys.modules[full] = stand_in
                raise
        return getattr(loaded[0], attr)

    stand_in.__getattr__ = load
    return stand_in


def detect_faces(pixels: np.ndarray) -> list[FaceBox]:
    """Faces in an (H, W, 3) uint8 RGB image, largest first (full-range BlazeFace)."""
    face_detection = solutions().face_detection

    h, w = pixels.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(pixels, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
        if scale < 1 else pixels
    boxes: list[FaceBox] = []
    for model in (1, 0):
        with native_stderr_silenced(), \
                face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.5) as det:
            found = det.process(np.ascontiguousarray(small)).detections or []
        for d in found:
            b = d.location_data.relative_bounding_box
            boxes.append(FaceBox(b.xmin * w, b.ymin * h, b.width * w, b.height * h, d.score[0]))
        if boxes:
            break
    return sorted(boxes, key=lambda b: -b.area)


def face_mesh(pixels: np.ndarray, box: FaceBox | None = None) -> np.ndarray | None:
    """The (478, 3) float32 mesh of the face in ``box`` (or the most prominent face).

    x, y in image pixels, z in the same scale as x, larger = farther from the camera.
    The face is cropped around ``box`` and resized so that the mesh model sees it well.
    """
    mp_mesh = solutions().face_mesh
    h, w = pixels.shape[:2]
    x0, y0, side = _mesh_window(box, w, h)
    crop = _crop_square(pixels, x0, y0, side)
    scale = MESH_CROP_SIDE / side
    crop = cv2.resize(crop, (MESH_CROP_SIDE, MESH_CROP_SIDE),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    with native_stderr_silenced(), \
            mp_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1,
                             min_detection_confidence=0.3) as mesher:
        result = mesher.process(crop)
    if not result.multi_face_landmarks:
        return None
    lm = result.multi_face_landmarks[0].landmark
    pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float64) * MESH_CROP_SIDE
    pts = pts / scale
    pts[:, 0] += x0
    pts[:, 1] += y0
    return pts.astype(np.float32)


def find_face(pixels: np.ndarray, face_index: int = 0) -> tuple[np.ndarray, int]:
    """Mesh of the ``face_index``-th largest face and the number of faces found.

    Raises ``NoFaceError`` when no face is found or the face is too small to animate.
    """
    boxes = detect_faces(pixels)
    if boxes and face_index >= len(boxes):
        raise NoFaceError(f"--face-index {face_index} asked for, but only {len(boxes)} face(s) "
                          f"were found; choose 0..{len(boxes) - 1} (0 is the largest)")
    if len(boxes) > 1:
        log.warning("found %d faces; animating face %d (largest first; choose with --face-index)",
                    len(boxes), face_index)
    box = boxes[face_index] if boxes else None
    if box is not None and max(box.w, box.h) < MIN_FACE_PX:
        raise NoFaceError(f"the face is only {max(box.w, box.h):.0f} px wide; use a photo where "
                          f"the face is at least {MIN_FACE_PX} px wide (ideally 256 px or more), "
                          "or crop the photo closer around the face")
    mesh = face_mesh(pixels, box) if box is not None or face_index == 0 else None
    if mesh is None:
        raise _FaceNotFound(_NO_FACE)
    return mesh, len(boxes)


class _FaceNotFound(NoFaceError):
    """No face at all (not one too small, nor a ``face_index`` past the faces found)."""


def find_upright_face(pixels: np.ndarray, face_index: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """``find_face`` on the photo turned by quarter turns so that the face stands upright: a
    photo taken sideways or upside down (its orientation tag lost) would otherwise animate a
    face lying on its side. Returns the (turned) (H, W, 3) pixels, the mesh in them and the
    number of faces. A face found is turned by its eyes' line; a photo where no face is found
    is searched turned (upside down first). An upside-down face that the face mesh takes for
    an upright one (it does on some photos) is animated as it is."""
    turned = 0
    try:
        mesh, count = find_face(pixels, face_index)
    except _FaceNotFound as missing:
        for turned in (2, 1, 3):
            try:
                mesh, count = find_face(np.ascontiguousarray(np.rot90(pixels, turned)), face_index)
                break
            except _FaceNotFound:
                continue
        else:
            raise missing
        pixels = np.ascontiguousarray(np.rot90(pixels, turned))
    turns = quarter_turns(mesh)
    if turns:
        pixels, turned = np.ascontiguousarray(np.rot90(pixels, turns)), (turned + turns) % 4
        mesh, count = find_face(pixels, face_index)
    if turned:
        log.warning("the face in the photo is %s (its orientation tag lost?); animating the "
                    "photo turned upright", "upside down" if turned == 2 else "on its side")
    return pixels, mesh, count


def quarter_turns(mesh: np.ndarray) -> int:
    """How many times ``np.rot90`` turns the photo to stand the face of its (478, ≥2) pixel
    ``mesh`` upright: 0 unless the eyes' line is tilted more than UPRIGHT_FROM_DEG."""
    right, left = R.eye_centers(mesh[:, :2])
    dx, dy = (left - right).astype(np.float64)
    if abs(np.degrees(np.arctan2(dy, dx))) <= UPRIGHT_FROM_DEG:
        return 0
    across = [dx, dy, -dx, -dy]  # the eyes' line along x after 0, 1, 2, 3 turns: (dx, dy) → (dy, -dx)
    return int(np.argmax(across))


def _mesh_window(box: FaceBox | None, w: int, h: int) -> tuple[int, int, int]:
    """Square window (x0, y0, side) in pixels around a face box, or the whole image."""
    if box is None:
        side = max(w, h)
        return (w - side) // 2, (h - side) // 2, side
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    side = int(round(max(box.w, box.h) * 2.2))
    return int(round(cx - side / 2)), int(round(cy - side / 2)), max(side, 8)


def _crop_square(pixels: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """A (side, side, 3) window of ``pixels`` at (x0, y0); outside the image is edge-replicated."""
    h, w = pixels.shape[:2]
    pad = [max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w)]
    window = pixels[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    if any(pad):
        window = cv2.copyMakeBorder(window, *pad, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(window)
