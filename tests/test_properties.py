"""Property-based tests (hypothesis) of the pure parts: framing transforms, coarticulation,
head pose, and the lengths that resampling produces."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from talkinghead.audio.features import RATE, SAMPLE_RATE, frame_values, iter_16k
from talkinghead.config import NUM_POSE_STYLES
from talkinghead.face.crop import MODES, Framing, plan_framing
from talkinghead.media import load_audio
from talkinghead.motion import coarticulation
from talkinghead.motion.pose import MAX_ANGLE, pose_style, pose_track
from talkinghead.motion.visemes import TARGETS, phone_table
from talkinghead.types import AudioFeatures, Phone, Waveform

FAST = settings(max_examples=25, deadline=None)
LABELS = ["SIL", "P", "B", "M", "F", "AA", "IY", "UW", "OW", "S", "SH", "T", "L", "ER", "W", "XX"]


# --------------------------------------------------------------------------------------------
# framing


def gradient_photo(w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8: red grows with x, green with y, so a pixel tells where it came from."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    return np.dstack([x, y, np.full_like(x, 128)]).round().astype(np.uint8)


def face_mesh_in(box: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """(478, 3) points filling a square face box (centre x, centre y, side)."""
    cx, cy, side = box
    pts = rng.uniform(-0.5, 0.5, (478, 3)) * side
    pts[:, 0] += cx
    pts[:, 1] += cy
    return pts.astype(np.float32)


@st.composite
def framings(draw) -> tuple[np.ndarray, np.ndarray, Framing]:
    w, h = draw(st.integers(96, 700)), draw(st.integers(96, 700))
    side = draw(st.floats(0.15, 0.6)) * min(w, h)
    cx = draw(st.floats(side / 2, w - side / 2))
    cy = draw(st.floats(side / 2, h - side / 2))
    mode = draw(st.sampled_from(MODES))
    size = draw(st.one_of(st.none(), st.integers(32, 600)))
    photo = gradient_photo(w, h)
    mesh = face_mesh_in((cx, cy, side), np.random.default_rng(draw(st.integers(0, 99))))
    return photo, mesh, plan_framing(photo, mesh, mode, size)


def unmap(framing: Framing, points: np.ndarray) -> np.ndarray:
    """Inverse of ``Framing.map_points``: working pixels → photo pixels."""
    sx, sy = framing.scale
    out = points.astype(np.float64).copy()
    out[:, 0] = out[:, 0] / sx + framing.offset[0]
    out[:, 1] = out[:, 1] / sy + framing.offset[1]
    out[:, 2] = out[:, 2] * 2 / (sx + sy)
    return out


@FAST
@given(framings())
def test_map_points_round_trips(case) -> None:
    _, mesh, framing = case
    np.testing.assert_allclose(unmap(framing, framing.map_points(mesh)), mesh, rtol=1e-4,
                               atol=1e-2)


@FAST
@given(framings())
def test_mapped_points_land_on_the_same_photo_content(case) -> None:
    """Where a photo point is mapped to, the working image shows that point's colour."""
    photo, mesh, framing = case
    h, w = photo.shape[:2]
    work = framing.image
    mapped = framing.map_points(mesh)
    inside = (mapped[:, 0] >= 1) & (mapped[:, 0] <= work.shape[1] - 2) \
        & (mapped[:, 1] >= 1) & (mapped[:, 1] <= work.shape[0] - 2)
    for (x, y, _), (u, v, _) in zip(mesh[inside][:40], mapped[inside][:40]):
        got = work[int(round(v)), int(round(u)), :2].astype(float)
        want = np.array([255 * x / (w - 1), 255 * y / (h - 1)])
        step = 255 * np.array([1 / framing.scale[0] / (w - 1), 1 / framing.scale[1] / (h - 1)])
        assert np.all(np.abs(got - want) <= 3 + 2 * step + 255 / np.array([w, h])), (got, want)


@FAST
@given(framings())
def test_framing_is_even_sized_and_its_window_inside(case) -> None:
    _, _, framing = case
    h, w = framing.image.shape[:2]
    assert h % 2 == 0 and w % 2 == 0
    x0, y0, x1, y1 = framing.roi
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


# --------------------------------------------------------------------------------------------
# coarticulation


@st.composite
def phone_sequences(draw) -> tuple[Phone, ...]:
    """Contiguous phones from 0 s, 10 ms .. 1.5 s each, labels including an unknown one."""
    count = draw(st.integers(1, 25))
    durations = draw(st.lists(st.floats(0.01, 1.5), min_size=count, max_size=count))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=count, max_size=count))
    ends = np.cumsum(durations)
    starts = np.concatenate([[0.0], ends[:-1]])
    return tuple(Phone(label, float(s), float(e)) for label, s, e in zip(labels, starts, ends))


@FAST
@given(phone_sequences())
def test_mouth_targets_stay_within_the_phones_targets(phones) -> None:
    times = np.arange(0.0, phones[-1].end + 0.5, 0.01)
    out = coarticulation.mouth_targets(phones, times)
    targets, _ = phone_table([p.label for p in phones],
                             np.array([p.end - p.start for p in phones]))
    assert out.shape == (len(times), len(TARGETS)) and np.isfinite(out).all()
    # a convex blend of the targets and of rest (0), which takes over far from every phone core
    assert np.all(out >= np.minimum(targets.min(axis=0), 0) - 1e-5)
    assert np.all(out <= np.maximum(targets.max(axis=0), 0) + 1e-5)


@FAST
@given(phone_sequences())
def test_mouth_targets_are_continuous(phones) -> None:
    """A weighted mean whose weights decay at rate r changes at most r · range per second."""
    dt = 0.002
    times = np.arange(0.0, phones[-1].end, dt)
    out = coarticulation.mouth_targets(phones, times)
    targets, _ = phone_table([p.label for p in phones],
                             np.array([p.end - p.start for p in phones]))
    span = np.maximum(targets.max(axis=0), 0) - np.minimum(targets.min(axis=0), 0)
    bound = float(coarticulation.RATES.max()) * span * dt * 1.05 + 1e-4
    assert np.all(np.abs(np.diff(out, axis=0)) <= bound)


def test_mouth_targets_without_phones_is_rest() -> None:
    out = coarticulation.mouth_targets((), np.arange(0, 1, 0.04))
    assert out.shape == (25, len(TARGETS)) and not out.any()


# --------------------------------------------------------------------------------------------
# head pose


@st.composite
def prosody(draw) -> AudioFeatures:
    hops = draw(st.integers(0, 800))
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    kind = draw(st.sampled_from(["random", "silent", "constant"]))
    if kind == "random":
        activity, onsets = rng.random(hops), rng.random(hops) ** 4
    else:
        level = 0.0 if kind == "silent" else 1.0
        activity, onsets = np.full(hops, level), np.full(hops, level)
    z = np.zeros(hops, np.float32)
    return AudioFeatures(RATE, z - 30, activity.astype(np.float32), z, onsets.astype(np.float32),
                         (), hops / RATE)


@FAST
@given(prosody(), st.floats(10, 60), st.integers(0, 400), st.integers(0, NUM_POSE_STYLES - 1),
       st.floats(0, 3), st.integers(0, 2**32 - 1))
def test_pose_is_finite_and_within_limits(features, fps, frames, style, scale, seed) -> None:
    pose = pose_track(features, fps, frames, pose_style(style), np.random.default_rng(seed), scale)
    assert pose.shape == (frames, 6) and pose.dtype == np.float32
    assert np.isfinite(pose).all()
    assert np.all(np.abs(pose[:, :3]) <= MAX_ANGLE + 1e-6)


# --------------------------------------------------------------------------------------------
# resampling lengths


@FAST
@given(st.integers(0, 500), st.floats(10, 200), st.floats(1, 120), st.integers(0, 400),
       st.integers(1, 3))
def test_frame_values_length_and_range(hops, rate, fps, frames, width) -> None:
    values = np.random.default_rng(hops).normal(size=(hops, width))
    out = frame_values(values, rate, fps, frames)
    assert out.shape == (frames, width) and np.isfinite(out).all()
    if hops and frames:
        assert np.all(out >= values.min(axis=0) - 1e-4) and np.all(out <= values.max(axis=0) + 1e-4)


@FAST
@given(st.floats(-5, 5), st.integers(1, 300), st.floats(10, 200), st.floats(1, 120),
       st.integers(1, 300))
def test_frame_values_keeps_a_constant(level, hops, rate, fps, frames) -> None:
    out = frame_values(np.full(hops, level), rate, fps, frames)
    np.testing.assert_allclose(out, level, rtol=1e-5, atol=1e-5)


RATES_HZ = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000]


@FAST
@given(st.sampled_from(RATES_HZ), st.integers(0, 200_000))
def test_iter_16k_gives_the_resampled_length(rate, samples) -> None:
    wave = Waveform(np.zeros(samples, np.float32), rate)
    total = sum(len(b) for b in iter_16k(wave, block_seconds=1.0))
    assert total == -(-samples * SAMPLE_RATE // rate)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(RATES_HZ), st.integers(1, 3), st.floats(0.01, 3.0),
       st.sampled_from([8000, 16000, 22050, 48000]))
def test_load_audio_resamples_to_the_right_length(rate, channels, seconds, target) -> None:
    n = max(1, int(seconds * rate))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        sf.write(path, np.zeros((n, channels), np.float32) + 0.1, rate, subtype="PCM_16")
        wave = load_audio(path, sample_rate=target)
    assert wave.sample_rate == target and wave.samples.dtype == np.float32
    assert abs(len(wave.samples) - n * target / rate) <= 2 + 1e-3 * n * target / rate
    assert np.all(np.abs(wave.samples) <= 1.0)
