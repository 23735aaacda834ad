"""Pure metric functions on arrays (see docs/METRICS.md).

Conventions: ``points`` are (T, 68, 2) float pixels of the iBUG 68-point scheme (0-based),
NaN where no face; per-frame series are (T,) float with NaN for missing frames; ``fps`` is
frames per second of the series. Lags are in frames; a positive lag means the first
(generated / video) series is late relative to the second (reference / audio).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from ..types import Phone

RIGHT_EYE = np.arange(36, 42)  # subject's right eye: on the image's left
LEFT_EYE = np.arange(42, 48)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
BILABIALS = frozenset({"P", "B", "M"})
OPEN_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH"})

# A generic head, written for this module: millimetres, x to the image's right, y down,
# z away from the camera; origin between the inner eye corners. Only the rigid points
# (eye corners and nose) are used, so that speech (jaw, lips) and brows do not move the pose.
HEAD_MODEL_INDICES = np.array([36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35])
HEAD_MODEL_MM = np.array([
    [-45.0, 0.0, 9.0], [-15.0, 0.0, 0.0], [15.0, 0.0, 0.0], [45.0, 0.0, 9.0],  # eye corners
    [0.0, -2.0, -12.0], [0.0, 9.0, -17.0], [0.0, 20.0, -23.0], [0.0, 32.0, -32.0],  # nose ridge
    [-14.0, 40.0, -10.0], [-7.0, 42.0, -15.0], [0.0, 43.0, -18.0],  # nostrils, subnasale
    [7.0, 42.0, -15.0], [14.0, 40.0, -10.0],
])


# ---------------------------------------------------------------- face geometry

def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and left eye centres, each (T, 2) pixels: means of points 36–41 and 42–47."""
    return points[:, RIGHT_EYE].mean(axis=1), points[:, LEFT_EYE].mean(axis=1)


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """(T,) inter-ocular distance in pixels (between the eye centres); NaN without a face."""
    right, left = eye_centres(points)
    return np.linalg.norm(left - right, axis=1)


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """(T,) m_t: mean inner-lip gap of pairs 61–67, 62–66, 63–65, in inter-ocular distances."""
    gaps = [np.linalg.norm(points[:, a] - points[:, b], axis=1) for a, b in INNER_LIP_PAIRS]
    return np.mean(gaps, axis=0) / inter_ocular(points)


def eye_aspect_ratio(points: np.ndarray) -> np.ndarray:
    """(T, 2) eye aspect ratio of the right and left eye (lid gaps / 2 × eye width); ~0.3 open, <0.2 shut."""
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = points[:, eye]
        lids = np.linalg.norm(p[:, 1] - p[:, 5], axis=1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=1)
        ratios.append(lids / (2.0 * np.linalg.norm(p[:, 0] - p[:, 3], axis=1)))
    return np.stack(ratios, axis=1)


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(T, 3) head yaw, pitch, roll in degrees from cv2.solvePnP of a generic 3D face.

    ``image_size``: (height, width); the camera has focal length max(height, width) pixels and
    its centre at the image centre. Yaw turns about the image's vertical axis, pitch about the
    horizontal axis, roll in the image plane; 0 is a face looking straight at the camera.
    NaN where no face or the fit fails.
    """
    height, width = image_size
    focal = float(max(height, width))
    camera = np.array([[focal, 0, width / 2.0], [0, focal, height / 2.0], [0, 0, 1]], np.float64)
    angles = np.full((len(points), 3), np.nan)
    for t, frame_points in enumerate(points):
        image_points = frame_points[HEAD_MODEL_INDICES]
        if np.all(np.isfinite(image_points)):
            angles[t] = _solve_angles(image_points, camera)
    return angles


def _solve_angles(image_points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(3,) yaw, pitch, roll in degrees of the head model seen at (N, 2) ``image_points``."""
    ok, rvec, _ = cv2.solvePnP(HEAD_MODEL_MM, image_points.astype(np.float64), camera, None,
                               flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return np.full(3, np.nan)
    rot, _ = cv2.Rodrigues(rvec)
    return np.degrees(_euler_zyx(rot))


def _euler_zyx(rot: np.ndarray) -> np.ndarray:
    """(3,) yaw, pitch, roll in radians of a rotation matrix R = Rz(roll) · Ry(yaw) · Rx(pitch)."""
    yaw = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    return np.array([yaw, pitch, roll])


# ---------------------------------------------------------------- audio

def audio_energy(samples: np.ndarray, sample_rate: int, times: np.ndarray, window: float) -> np.ndarray:
    """(T,) e_t: log RMS level in dB (floor −100) of ``samples`` over [t, t + window) for each time t.

    ``samples``: (N,) float mono in [-1, 1]; ``times``: (T,) seconds from the first sample;
    ``window``: seconds, usually one video frame (1 / fps). Windows past the end read silence.
    """
    starts = np.clip(np.round(np.asarray(times) * sample_rate).astype(np.int64), 0, len(samples))
    length = max(1, int(round(window * sample_rate)))
    power = np.concatenate([[0.0], np.cumsum(np.asarray(samples, np.float64) ** 2)])
    ends = np.minimum(starts + length, len(samples))
    mean_power = (power[ends] - power[starts]) / length
    return 20.0 * np.log10(np.sqrt(mean_power) + 1e-5)


def speech_threshold(energy: np.ndarray, fraction: float = 0.35, min_range_db: float = 12.0) -> float:
    """Energy level in dB that separates silence from speech, or −inf when there is no silence.

    Robust to outliers: the floor (5th percentile) plus ``fraction`` of the range to the
    95th percentile. A range under ``min_range_db`` means one level throughout: all speech.
    """
    finite = energy[np.isfinite(energy)]
    if len(finite) == 0:
        return float("-inf")
    low, high = np.percentile(finite, [5, 95])
    if high - low < min_range_db:
        return float("-inf")
    return float(low + fraction * (high - low))


def silence_mask(energy: np.ndarray, fps: float, min_seconds: float = 0.25) -> np.ndarray:
    """(T,) bool: frames inside silent stretches (energy below ``speech_threshold``) ≥ ``min_seconds``."""
    quiet = energy < speech_threshold(energy)
    mask = np.zeros(len(energy), dtype=bool)
    min_frames = max(1, int(np.ceil(min_seconds * fps - 1e-9)))
    for start, end in _runs(quiet):
        if end - start >= min_frames:
            mask[start:end] = True
    return mask


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) index ranges of the True runs in a (T,) bool array."""
    padded = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


# ---------------------------------------------------------------- correlation and sync

def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two (T,) series over the frames where both are finite.

    A constant series (undefined r) counts as r = 0: it carries no sync.
    NaN when fewer than 3 frames are usable.
    """
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    x, y = a[keep], b[keep]
    if _is_constant(x) or _is_constant(y):
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    return float(np.clip((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()), -1.0, 1.0))


def _is_constant(x: np.ndarray) -> bool:
    """Whether a finite (T,) series is constant up to rounding."""
    return float(np.ptp(x)) <= 1e-9 * max(1.0, float(np.abs(x).max()))


def lagged_pearson(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Pearson r of a[t + lag] with b[t]: positive ``lag`` means ``a`` is late by ``lag`` frames."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    if abs(lag) >= n:
        return float("nan")
    if lag >= 0:
        return pearson(a[lag:], b[: n - lag])
    return pearson(a[: n + lag], b[-lag:])


def _lags(max_lag: int) -> list[int]:
    """Lags 0, −1, 1, −2, 2, ...: ties in r go to the smallest shift."""
    return [0] + [s * k for k in range(1, max_lag + 1) for s in (-1, 1)]


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 8) -> tuple[float, float, int]:
    """(r at lag 0, best r over lags −max_lag..max_lag, that lag); lag sign as in ``lagged_pearson``."""
    r0 = lagged_pearson(a, b, 0)
    best_r, best = float("nan"), 0
    for lag in _lags(max_lag):
        r = lagged_pearson(a, b, lag)
        if np.isfinite(r) and not (np.isfinite(best_r) and r <= best_r):
            best_r, best = r, lag
    return r0, best_r, best


def _barely_moves(series: np.ndarray, min_std: float) -> bool:
    """Whether a (T,) series varies less than ``min_std`` (NaN ignored) or has no finite value."""
    finite = series[np.isfinite(series)]
    return len(finite) == 0 or float(finite.std()) < min_std


def sync_with_reference(gen: np.ndarray, real: np.ndarray, max_lag: int = 8,
                        min_std: float = 0.005) -> tuple[float, float, int]:
    """Lip sync against ground truth: (r_at_0, best_r, best_lag) of (T,) mouth-opening series.

    ``gen``: the generated video's m_t; ``real``: the real video's m_t on the same audio and
    frame times (trailing frames of the longer one are ignored). A positive ``best_lag`` means
    the generated mouth is late: gen[t + lag] matches real[t]. A mouth whose m_t varies less
    than ``min_std`` inter-ocular distances counts as still (landmark noise on a re-encoded
    still is ~0.001) and gives (0, 0, 0), as does a constant series.
    """
    gen, real = np.asarray(gen, np.float64), np.asarray(real, np.float64)
    if _barely_moves(gen, min_std) or _barely_moves(real, min_std):
        return 0.0, 0.0, 0
    return best_lag(gen, real, max_lag)


@dataclass(frozen=True)
class AudioSync:
    """Mouth opening vs audio energy. ``r0``, ``best_r``, ``best_lag``: as in ``best_lag`` (positive:
    the mouth is late); ``null_r0``, ``null_best_r``: the same with the audio shifted by half its length."""

    r0: float
    best_r: float
    best_lag: int
    null_r0: float
    null_best_r: float


def sync_with_audio(mouth: np.ndarray, energy: np.ndarray, max_lag: int = 8,
                    min_std: float = 0.005) -> AudioSync:
    """r(m_t, e_t) at lag 0 and best over ±``max_lag`` frames, with a shifted-audio null.

    ``mouth``: (T,) m_t; ``energy``: (T,) e_t in dB on the same frames. The null circularly
    shifts the energy by half its length, which keeps its statistics but breaks the timing.
    A mouth varying less than ``min_std`` (see ``sync_with_reference``) gives all zeros.
    """
    m, e = np.asarray(mouth, np.float64), np.asarray(energy, np.float64)
    n = min(len(m), len(e))
    m, e = m[:n], e[:n]
    if _barely_moves(m, min_std):
        return AudioSync(0.0, 0.0, 0, 0.0, 0.0)
    r0, best_r, lag = best_lag(m, e, max_lag)
    shifted = np.roll(e, n // 2)
    _, null_best, _ = best_lag(m, shifted, max_lag)
    return AudioSync(r0, best_r, lag, lagged_pearson(m, shifted, 0), null_best)


def silence_rest_ratio(mouth: np.ndarray, energy: np.ndarray, fps: float, min_seconds: float = 0.25) -> float:
    """Median m_t in silent stretches ≥ ``min_seconds`` / median m_t in speech frames.

    Silence and speech come from ``energy`` (T,) dB via ``speech_threshold``; speech frames are
    those at or above it. Below 1: the mouth rests when nobody speaks. NaN when the clip has no
    silent stretch, no speech, or a zero speech median.
    """
    m = np.asarray(mouth, np.float64)
    silent = silence_mask(energy, fps, min_seconds) & np.isfinite(m)
    speech = (energy >= speech_threshold(energy)) & np.isfinite(m)
    if not silent.any() or not speech.any():
        return float("nan")
    speaking = float(np.median(m[speech]))
    return float(np.median(m[silent]) / speaking) if speaking > 0 else float("nan")


# ---------------------------------------------------------------- identity and sharpness

def identity_distances(descriptors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(K,) Euclidean distances of (K, 128) dlib descriptors to the (128,) reference; same person < 0.6."""
    return np.linalg.norm(np.asarray(descriptors) - np.asarray(reference)[None, :], axis=1)


def identity_distance(descriptors: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(mean, max) descriptor distance to the portrait's over frames with a face; NaN if none."""
    d = identity_distances(descriptors, reference)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan")
    return float(d.mean()), float(d.max())


def face_box(points: np.ndarray, pad: float = 0.1) -> np.ndarray | None:
    """(4,) int left, top, right, bottom around (68, 2) points, padded by ``pad`` of the size; None if NaN."""
    if not np.all(np.isfinite(points)):
        return None
    low, high = points.min(axis=0), points.max(axis=0)
    margin = pad * (high - low)
    return np.concatenate([low - margin, high + margin]).round().astype(np.int64)


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 3×3 Laplacian of an (H, W) image; higher is sharper (units: grey levels²)."""
    return float(cv2.Laplacian(np.asarray(gray, np.float64), cv2.CV_64F, ksize=3).var())


def _face_crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(h, w) float64 grey crop of (H, W, 3) uint8 RGB ``image`` inside ``box``, clipped to the image."""
    height, width = image.shape[:2]
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(width, int(box[2])), min(height, int(box[3]))
    return cv2.cvtColor(image[top:bottom, left:right], cv2.COLOR_RGB2GRAY).astype(np.float64)


INNER_FACE = slice(17, 68)  # brows, nose, eyes, mouth: the face without its outline and background
RIGID_FACE = slice(17, 48)  # brows, nose, eyes: points that the mouth and jaw do not move


def face_scale(points: np.ndarray, reference: np.ndarray) -> float:
    """How many times larger the face of (68, 2) ``points`` is than ``reference``'s: the ratio
    of the RMS spreads of their rigid points (brows, nose, eyes); NaN if either is missing."""
    spreads = [np.sqrt(((p[RIGID_FACE] - p[RIGID_FACE].mean(axis=0)) ** 2).sum(axis=1).mean())
               for p in (np.asarray(points, np.float64), np.asarray(reference, np.float64))]
    return float(spreads[0] / spreads[1]) if spreads[1] > 0 else float("nan")


def sharpness_ratio(frames: np.ndarray, points: np.ndarray, portrait: np.ndarray,
                    portrait_points: np.ndarray, every: int = 1, scale: float = 0.5) -> float:
    """Median over every ``every``-th frame of face Laplacian variance / the portrait's.

    ``frames``: (T, H, W, 3) uint8 RGB; ``points``: (T, 68, 2); ``portrait``: (H', W', 3) uint8;
    ``portrait_points``: (68, 2). The crops span the inner face (brows to lips, no outline or
    background, whose edges would swamp the measure). Each crop is resized, keeping its aspect,
    to ``scale`` × the portrait's face size (the same scale, judged by brows, nose and eyes
    only, so that a mouth opening or closing does not stretch the crop); the default half scale
    keeps video-codec noise (H.264 at CRF 18 alone costs ~30 % at full scale) from swamping
    blur. Every frame counts by default: single frames vary by ±10 % with the tracked points,
    and medians over every 5th frame moved by ±0.03. ≥ 0.9: no blur added. NaN without faces.
    """
    base = _scaled_face(portrait, portrait_points, portrait_points, scale)
    if not base > 0:
        return float("nan")
    ratios = [_scaled_face(frames[t], points[t], portrait_points, scale) / base
              for t in range(0, len(frames), max(1, every))]
    ratios = [r for r in ratios if np.isfinite(r)]
    return float(np.median(ratios)) if ratios else float("nan")


def _scaled_face(image: np.ndarray, points: np.ndarray, reference: np.ndarray,
                 scale: float) -> float:
    """Laplacian variance of ``image``'s inner face, resized to ``scale`` × the size of the
    ``reference`` (68, 2) face; NaN without a face."""
    box = face_box(points[INNER_FACE], pad=0.0)
    if box is None:
        return float("nan")
    crop = _face_crop(image, box)
    factor = scale / face_scale(points, reference)
    shape = (max(8, int(round(crop.shape[0] * factor))), max(8, int(round(crop.shape[1] * factor))))
    method = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return laplacian_variance(cv2.resize(crop, (shape[1], shape[0]), interpolation=method))


# ---------------------------------------------------------------- blinks, motion, jitter

def _fill_gaps(x: np.ndarray) -> np.ndarray | None:
    """(T,) series with NaN filled by linear interpolation; None when fewer than 3 finite values."""
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return None
    t = np.arange(len(x))
    return np.interp(t, t[ok], x[ok])


def detect_blinks(ear: np.ndarray, fps: float, min_depth: float = 0.2, noise_k: float = 4.0,
                  baseline_seconds: float = 1.0, min_separation: float = 0.25,
                  max_duration: float = 1.0) -> np.ndarray:
    """Frame indices (B,) of blinks: dips of a (T,) eye aspect ratio below a per-video threshold.

    The dip depth is (rolling median over ``baseline_seconds`` − EAR) / rolling median. A blink
    is a run of frames deeper than max(``min_depth``, ``noise_k`` × robust noise of the depth),
    lasting at most ``max_duration`` seconds; dips closer than ``min_separation`` seconds merge.
    """
    x = _fill_gaps(ear)
    if x is None:
        return np.zeros(0, np.int64)
    size = max(3, int(round(baseline_seconds * fps)) | 1)
    baseline = median_filter(x, size=size, mode="nearest")
    depth = (baseline - x) / np.maximum(baseline, 1e-9)
    noise = 1.4826 * np.median(np.abs(depth - np.median(depth)))
    threshold = max(min_depth, noise_k * noise)
    events = [start + int(np.argmax(depth[start:end])) for start, end in _runs(depth > threshold)
              if end - start <= max_duration * fps]
    return _merge_events(np.asarray(events, np.int64), depth, int(round(min_separation * fps)))


def _merge_events(events: np.ndarray, depth: np.ndarray, min_gap: int) -> np.ndarray:
    """Keep the deepest of events closer than ``min_gap`` frames; (B,) sorted indices."""
    kept: list[int] = []
    for e in events.tolist():
        if kept and e - kept[-1] < min_gap:
            if depth[e] > depth[kept[-1]]:
                kept[-1] = e
        else:
            kept.append(e)
    return np.asarray(kept, np.int64)


def blinks_per_minute(ear: np.ndarray, fps: float) -> float:
    """Blinks per minute from a (T,) EAR series (mean of both eyes) at ``fps``; real people: 10–25."""
    minutes = len(ear) / fps / 60.0
    return float(len(detect_blinks(ear, fps)) / minutes) if minutes > 0 else float("nan")


IRIS_DARK_SHARE = 35.0   # percent of an eye's pixels taken as iris and pupil (the darkest)
OPEN_EYE_EAR = 0.2       # gaze is measured only in frames with both eyes at least this open


def iris_offsets(frames, points: np.ndarray) -> np.ndarray:
    """(T,) eye-in-head gaze: where the iris sits between each eye's corners (the centroid of
    the darkest ``IRIS_DARK_SHARE`` % of the pixels inside points 36-41 / 42-47, projected on
    the corner-to-corner line, as a share of that line from its middle), mean of both eyes.
    NaN without a face or with an eye closed (EAR < ``OPEN_EYE_EAR``). ``frames``: T (H, W, 3)
    uint8 RGB images; ``points``: (T, 68, 2)."""
    ear = eye_aspect_ratio(points)
    out = np.full(len(points), np.nan)
    for t, (frame, pts) in enumerate(zip(frames, points)):
        if not np.all(np.isfinite(pts)) or np.min(ear[t]) < OPEN_EYE_EAR:
            continue
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)
        out[t] = np.mean([_iris_along(grey, pts[eye]) for eye in (RIGHT_EYE, LEFT_EYE)])
    return out


def _iris_along(grey: np.ndarray, eye: np.ndarray) -> float:
    """Iris position of one eye's six points (corner, 2 upper, corner, 2 lower) in ``grey``,
    as a share of the corner-to-corner line from its middle (NaN when the eye is too small)."""
    x0, y0 = np.floor(eye.min(axis=0)).astype(int)
    x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    mask = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    if mask.size == 0:
        return float("nan")
    cv2.fillConvexPoly(mask, np.round(eye - [x0, y0]).astype(np.int32), 1)
    ys, xs = np.nonzero(mask[:grey.shape[0] - y0, :grey.shape[1] - x0])
    if len(ys) < 10:
        return float("nan")
    values = grey[ys + y0, xs + x0]
    dark = values <= np.percentile(values, IRIS_DARK_SHARE)
    centre = np.array([xs[dark].mean() + x0, ys[dark].mean() + y0])
    axis = eye[3] - eye[0]
    return float((centre - eye[0]) @ axis / (axis @ axis) - 0.5)


def gaze_spread(offsets: np.ndarray, fps: float) -> float:
    """Standard deviation of (T,) ``iris_offsets`` at ``fps`` (share of the eye's width); NaN
    with under 2 s measured. A still eye reads about 0.01 (the measurement's own noise)."""
    ok = np.isfinite(offsets)
    return float(np.std(offsets[ok])) if ok.sum() >= 2 * fps else float("nan")


BROWS = slice(17, 27)
EYE_CORNERS = ((36, 39), (42, 45))  # the lids move in blinks, the corners do not


def brow_heights(points: np.ndarray) -> np.ndarray:
    """(T,) height of the brows (points 17-26) above the line through the eye corners'
    midpoints, across it, in inter-ocular distances (between those midpoints); NaN without a
    face. ``points``: (T, 68, 2) pixels."""
    points = np.asarray(points, np.float64)
    right, left = (points[:, list(c)].mean(axis=1) for c in EYE_CORNERS)
    across = left - right
    iod = np.linalg.norm(across, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.stack([across[:, 1], -across[:, 0]], axis=1) / iod[:, None]  # image y is down
        return np.sum((points[:, BROWS].mean(axis=1) - (left + right) / 2) * up, axis=1) / iod


def brow_spread(heights: np.ndarray, fps: float) -> float:
    """Standard deviation of (T,) ``brow_heights`` at ``fps`` (IOD); NaN with under 2 s
    measured. Head pitch moves it too (the brows stand in front of the eyes)."""
    ok = np.isfinite(heights)
    return float(np.std(heights[ok])) if ok.sum() >= 2 * fps else float("nan")


def head_motion_std(pose: np.ndarray) -> np.ndarray:
    """(3,) standard deviation in degrees of yaw, pitch, roll over a (T, 3) pose series (NaN ignored)."""
    pose = np.asarray(pose, np.float64)
    ok = np.all(np.isfinite(pose), axis=1)
    return pose[ok].std(axis=0) if ok.sum() >= 2 else np.full(3, np.nan)


def head_motion_ratio(gen_pose: np.ndarray, real_pose: np.ndarray) -> tuple[np.ndarray, float]:
    """(per-axis (3,) std ratios generated / real, ratio of the std vectors' norms); target 0.5–1.5."""
    gen, real = head_motion_std(gen_pose), head_motion_std(real_pose)
    with np.errstate(divide="ignore", invalid="ignore"):
        return gen / real, float(np.linalg.norm(gen) / np.linalg.norm(real))


def landmark_jitter(points: np.ndarray) -> float:
    """Mean |second difference| of the 68 landmarks over time, in inter-ocular distances per frame².

    ``points``: (T, 68, 2); frames without a face drop the differences they touch. 0 for a still.
    """
    p = np.asarray(points, np.float64)
    if len(p) < 3:
        return float("nan")
    second = np.linalg.norm(p[2:] - 2.0 * p[1:-1] + p[:-2], axis=2)
    iod = np.nanmedian(inter_ocular(p)) if np.isfinite(inter_ocular(p)).any() else np.nan
    values = second[np.isfinite(second)]
    return float(values.mean() / iod) if len(values) and iod > 0 else float("nan")


def beat_alignment(pose: np.ndarray, energy: np.ndarray, fps: float, sigma_frames: float = 3.0,
                   min_std_deg: float = 0.3) -> float:
    """Mean over head-motion beats of exp(−d² / 2σ²), d = frames to the nearest audio onset.

    Motion beats: local minima of the head's angular speed (from (T, 3) ``pose`` in degrees);
    audio onsets: peaks of the rise of ``energy`` (T,) dB. In [0, 1]. NaN without beats or
    onsets, or when the head moves less than ``min_std_deg`` (norm of the per-axis std; landmark
    noise on a still is ~0.15°), whose "beats" would be noise.
    """
    if not np.linalg.norm(head_motion_std(pose)) >= min_std_deg:
        return float("nan")
    speed = np.linalg.norm(np.diff(np.asarray(pose, np.float64), axis=0), axis=1)
    speed = _fill_gaps(speed)
    rise = np.maximum(np.diff(np.asarray(energy, np.float64)), 0.0)
    if speed is None or len(rise) == 0 or np.ptp(speed) <= 1e-9:
        return float("nan")
    gap = max(1, int(round(0.2 * fps)))
    beats, _ = find_peaks(-speed, distance=gap, prominence=0.1 * float(np.median(speed)) + 1e-9)
    onsets, _ = find_peaks(rise, distance=gap, height=max(3.0, float(rise.mean() + rise.std())))
    if len(beats) == 0 or len(onsets) == 0:
        return float("nan")
    d = np.abs(beats[:, None] - onsets[None, :]).min(axis=1)
    return float(np.mean(np.exp(-(d ** 2) / (2.0 * sigma_frames ** 2))))


# ---------------------------------------------------------------- phones

def _phone_frames(phone: Phone, fps: float, num_frames: int) -> np.ndarray:
    """Frame indices whose instants t / fps fall in [start, end]; the nearest frame if none do."""
    first, last = int(np.ceil(phone.start * fps - 1e-9)), int(np.floor(phone.end * fps + 1e-9))
    if last < first:
        first = last = int(round((phone.start + phone.end) / 2.0 * fps))
    return np.arange(max(first, 0), min(last, num_frames - 1) + 1)


def bilabial_scores(mouth_open: np.ndarray, phones: tuple[Phone, ...], fps: float,
                    closed_fraction: float = 0.15, open_fraction: float = 0.4) -> tuple[float, float]:
    """(share of P/B/M phones with closed lips, share of open vowels with open lips).

    ``mouth_open``: (T,) m_t at ``fps``; ``phones``: timed phones (seconds, same clock as frame
    t at t / fps). The video's own range runs from its 5th to 95th percentile of m_t; lips are
    closed below ``closed_fraction`` of that range (for ≥ 1 frame in the phone's span) and open
    above ``open_fraction`` of it (for ≥ 1 frame). Open vowels: AA AE AH AO AW AY EH. NaN when
    there are no such phones or no frames.
    """
    m = np.asarray(mouth_open, np.float64)
    finite = m[np.isfinite(m)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [5, 95])
    closed_level, open_level = low + closed_fraction * (high - low), low + open_fraction * (high - low)
    closed = [_any_frame(m, p, fps, lambda v: v <= closed_level) for p in phones if p.label in BILABIALS]
    opened = [_any_frame(m, p, fps, lambda v: v >= open_level) for p in phones if p.label in OPEN_VOWELS]
    closed = [c for c in closed if c is not None]
    opened = [o for o in opened if o is not None]
    return (float(np.mean(closed)) if closed else float("nan"),
            float(np.mean(opened)) if opened else float("nan"))


def _any_frame(m: np.ndarray, phone: Phone, fps: float, test) -> bool | None:
    """Whether ``test`` holds for ≥ 1 finite frame in the phone's span; None if it has none."""
    values = m[_phone_frames(phone, fps, len(m))]
    values = values[np.isfinite(values)]
    return bool(np.any(test(values))) if len(values) else None


# ---------------------------------------------------------------- timelines

def resample(values: np.ndarray, times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, ...) ``values`` at ``times`` (s) onto ``grid`` (G,) seconds.

    NaN where a contributing sample is NaN or the grid point lies more than one source frame
    interval outside [times[0], times[-1]].
    """
    values = np.asarray(values, np.float64)
    flat = values.reshape(len(values), -1)
    valid = np.isfinite(flat)
    out = np.empty((len(grid), flat.shape[1]))
    for k in range(flat.shape[1]):
        filled = np.interp(grid, times, np.where(valid[:, k], flat[:, k], 0.0))
        weight = np.interp(grid, times, valid[:, k].astype(np.float64))
        out[:, k] = np.where(weight > 1.0 - 1e-6, filled, np.nan)
    step = 1.001 * float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    out[(grid < times[0] - step) | (grid > times[-1] + step)] = np.nan
    return out.reshape((len(grid),) + values.shape[1:])
