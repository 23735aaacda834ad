"""Eye gaze: the irises slide between fixed corners and lids; saccades and eye contact."""
from __future__ import annotations

import json

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.face import regions as R
from talkinghead.face.crop import plan_framing
from talkinghead.face.landmarks import find_face
from talkinghead.face.model import fit_framed
from talkinghead.media import load_image
from talkinghead.motion.gaze import (EYE_CONTACT, MAX_EYE_DEG, UNIT_DEG, GazeSchedule, eye_turn,
                                     gaze_rng)
from talkinghead.render.gaze import EyeAxis
from talkinghead.render.mouth import polygon_mask
from talkinghead.render.renderer import Renderer

EYES = ((R.LEFT_UPPER_LID, R.LEFT_LOWER_LID), (R.RIGHT_UPPER_LID, R.RIGHT_LOWER_LID))


def _renderer(portrait_path, glasses: bool) -> Renderer:
    pixels = load_image(portrait_path).pixels
    mesh, _ = find_face(pixels)
    framing = plan_framing(pixels, mesh, "crop", 384, glasses=glasses)
    fit = fit_framed(framing, mesh)
    return Renderer(framing, fit)


@pytest.fixture(scope="module")
def crop(portrait_path) -> Renderer:
    """The demo portrait, whose glasses are found."""
    return _renderer(portrait_path, True)


@pytest.fixture(scope="module")
def bare(portrait_path) -> Renderer:
    """The demo portrait as if it had no glasses."""
    return _renderer(portrait_path, False)


def _turned(r: Renderer, side: float, down: float = 0.0) -> np.ndarray:
    e = r.fit.source_expression.astype(np.float32).copy()
    e[r.fit.channels.index("gaze_x")] = side
    e[r.fit.channels.index("gaze_y")] = down
    return e


def _openings(r: Renderer, shape: tuple[int, int]) -> list[np.ndarray]:
    """Each eye's opening in the photo as a (h, w) bool mask, lid contour included."""
    out = []
    for upper, lower in EYES:
        polygon = np.concatenate([r.fit.mesh[upper, :2], r.fit.mesh[lower[-2:0:-1], :2]])
        out.append(polygon_mask(polygon, shape) > 0)
    return out


def _iris(frame: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(x, y) of the darkest third of an eye opening's pixels (the iris and pupil), px."""
    grey = frame.astype(np.float32).mean(axis=2)
    ys, xs = np.nonzero(inside)
    values = grey[ys, xs]
    dark = values <= np.percentile(values, 33)
    return np.array([xs[dark].mean(), ys[dark].mean()])


def test_turning_the_eyes_slides_both_irises_and_leaves_everything_else(crop):
    """Eyes turned 10° towards the image's left: each iris moves left by about the eyeball's
    turn (0.19 IOD × sin 10°), and every pixel outside the eye openings is untouched."""
    pose = np.zeros(6, np.float32)
    still = crop.render(_turned(crop, 0.0), pose, 0.0)
    turned = crop.render(_turned(crop, 10.0 / UNIT_DEG), pose, 0.0)
    openings = _openings(crop, still.shape[:2])
    expected = 0.19 * crop.fit.iod * np.sin(np.radians(10.0))
    for inside in openings:
        moved = _iris(turned, inside)[0] - _iris(still, inside)[0]
        assert -1.5 * expected < moved < -0.4 * expected
    outside = ~np.logical_or(*openings)
    assert np.array_equal(turned[outside], still[outside])
    back = crop.render(_turned(crop, -10.0 / UNIT_DEG), pose, 0.0)
    for inside in openings:
        assert _iris(back, inside)[0] - _iris(still, inside)[0] > 0.4 * expected


def test_looking_down_lowers_the_iris_and_the_upper_lids(bare, crop):
    """Eyes turned 10° down: the upper lids come down (blink weight 0.1-0.45) and the iris
    seen between the lids moves down; the lower lids stay about where they were. Never up;
    and not behind glasses, where a lid held half down shows seams."""
    pose = np.zeros(6, np.float32)
    e = _turned(bare, 0.0, 10.0 / UNIT_DEG)
    lids = bare._lid_weights(e, 0.0)
    assert np.all((0.1 < lids) & (lids < 0.45))
    still, down = bare.render(_turned(bare, 0.0), pose, 0.0), bare.render(e, pose, 0.0)
    mesh = bare.posed_mesh(e, pose, 0.0)
    for inside, (upper, lower) in zip(_openings(bare, still.shape[:2]), EYES):
        lid_drop = (mesh[upper, 1] - bare.fit.mesh[upper, 1]).max()
        assert lid_drop > 1.0
        assert np.abs(mesh[lower, 1] - bare.fit.mesh[lower, 1]).max() < 0.5 * lid_drop
        assert _iris(down, inside)[1] - _iris(still, inside)[1] > 0.5
    assert np.all(bare._lid_weights(_turned(bare, 0.0, -0.5), 0.0) == 0)
    assert np.all(crop._lid_weights(e, 0.0) == 0)
    assert np.array_equal(crop.render(e, pose, 0.0), crop.render(_turned(crop, 0.0), pose, 0.0))


def test_a_blink_closes_over_the_turned_eye(crop):
    """Inside a half-closed lid the eye shows as turned, not as in the photo."""
    pose = np.zeros(6, np.float32)
    e = _turned(crop, 0.5, 0.2)
    shut, opened = crop.render(e, pose, 0.5), crop.render(e, pose, 0.0)
    mesh = crop.posed_mesh(e, pose, 0.5)
    for upper, lower in EYES:
        polygon = np.concatenate([mesh[upper, :2], mesh[lower[-2:0:-1], :2]])
        inside = polygon_mask(polygon, shut.shape[:2], 1.0) > 0.99
        assert inside.sum() > 20
        assert np.abs(shut.astype(float) - opened.astype(float))[inside].mean() < 1.0


def test_the_eye_axis_keeps_the_corners_and_moves_the_iris_rigidly():
    points = np.zeros((478, 2), np.float32)
    upper, lower = R.LEFT_UPPER_LID, R.LEFT_LOWER_LID
    xs = np.linspace(100, 160, len(upper))
    points[upper] = np.column_stack([xs, 50 - 10 * np.sin(np.pi * (xs - 100) / 60)])
    points[lower] = np.column_stack([np.linspace(100, 160, len(lower)), np.full(len(lower), 50.0)])
    points[R.LEFT_IRIS] = [[130, 50], [136, 50], [130, 44], [124, 50], [130, 56]]
    axis = EyeAxis.of(points, upper, lower, R.LEFT_IRIS)
    assert axis.length == pytest.approx(60) and axis.iris == pytest.approx(30)
    assert axis.radius == pytest.approx(6) and axis.opening == pytest.approx(10, abs=0.5)
    shift = 4.0
    xy = np.array([[100, 50], [160, 50], [134, 50], [131, 47], [90, 50]], np.float32)
    fetched = axis.turned(xy, shift)
    assert np.allclose(fetched[[0, 1, 4]], xy[[0, 1, 4]])          # corners and beyond stay
    assert np.allclose(fetched[[2, 3]], xy[[2, 3]] - [shift, 0])    # the iris shows shifted
    along = np.linspace(95, 165, 200, dtype=np.float32)
    line = axis.turned(np.column_stack([along, np.full_like(along, 50)]), shift)[:, 0]
    assert np.all(np.diff(line) > 0)                                 # no fold
    assert axis.along_px(-80.0, 100.0) <= 0.6 * (60 - 30 - 1.15 * 6) + 1e-6
    dropped = axis.turned(np.array([[130, 45], [101, 50], [170, 45]], np.float32), 0.0, 3.0)
    assert np.allclose(dropped[0], [130, 42], atol=0.2)              # widest column: all of it
    assert 49.5 < dropped[1, 1] < 50 and dropped[2, 1] == 45         # a corner: little; beyond: 0
    assert axis.drop_px(80.0, 100.0) == pytest.approx(0.4 * axis.opening)


def test_saccades_have_a_natural_rate_and_reach():
    """Over 10 minutes: a glance of 6-13° away and back every 3-6 s (the evaluation clips'
    speakers: two or three in 8 s), the eyes near the viewer most of the time."""
    targets, lids = GazeSchedule(gaze_rng(3), 25.0).take(25 * 600)
    size = np.linalg.norm(targets, axis=1)
    away = np.diff((size > 4.0).astype(int)) == 1
    assert 3.0 < 600 / away.sum() < 6.0
    assert 0.7 < (size < 4.0).mean() < 0.9
    assert size.max() <= 13.0 and targets[:, 1].min() == 0.0
    down = targets[:, 1] > 4.0
    assert 0.3 < down.sum() / (size > 4.0).sum() < 0.7                # some glances look down
    again = GazeSchedule(gaze_rng(3), 25.0)
    first, rest = again.take(100), again.take(25 * 600 - 100)
    assert np.array_equal(np.concatenate([first[0], rest[0]]), targets)
    assert np.array_equal(np.concatenate([first[1], rest[1]]), lids)
    assert not np.array_equal(GazeSchedule(gaze_rng(4), 25.0).take(25 * 600)[0], targets)


def test_some_glances_come_with_a_blink():
    """About a fifth of the glances start with a blink (shut at its peak, 160-320 ms); without
    blinks the gaze is the same."""
    targets, lids = GazeSchedule(gaze_rng(5), 25.0).take(25 * 600)
    onsets = np.flatnonzero(np.diff((np.linalg.norm(targets, axis=1) > 4.0).astype(int)) == 1) + 1
    with_blink = np.mean([lids[k:k + 3].max() > 0.5 for k in onsets])
    assert 0.1 < with_blink < 0.32
    shut = np.flatnonzero(np.diff((lids >= 1.0).astype(int)) == 1)
    assert len(shut) == pytest.approx(with_blink * len(onsets), abs=2)
    quiet = GazeSchedule(gaze_rng(5), 25.0, blinks=False).take(25 * 600)
    assert np.array_equal(quiet[0], targets) and not quiet[1].any()


def test_glances_wait_for_pauses_in_speech():
    """With 1.6 s phrases between 0.6 s pauses, nine glances in ten start in a pause (at
    least 0.25 s into it); without speech they fall anywhere; split blocks change nothing."""
    fps, n = 25.0, 25 * 600
    t = np.arange(n) / fps
    jaw = np.where(t % 2.2 < 1.6, 0.3, 0.0).astype(np.float32)
    targets, _ = GazeSchedule(gaze_rng(6), fps).take(n, jaw)
    onsets = np.flatnonzero(np.diff((np.linalg.norm(targets, axis=1) > 4.0).astype(int)) == 1) + 1
    in_pause = (t[onsets] % 2.2) >= 1.6 + 0.24
    assert len(onsets) > 80 and in_pause.mean() > 0.9
    free, _ = GazeSchedule(gaze_rng(6), fps).take(n)
    free_onsets = np.flatnonzero(np.diff((np.linalg.norm(free, axis=1) > 4.0).astype(int)) == 1) + 1
    assert ((t[free_onsets] % 2.2) >= 1.84).mean() < 0.4
    again = GazeSchedule(gaze_rng(6), fps)
    parts = [again.take(m, jaw[a:a + m])[0] for a, m in ((0, 1000), (1000, 37), (1037, n - 1037))]
    assert np.array_equal(np.concatenate(parts), targets)


def test_the_eyes_hold_the_viewer_as_the_head_turns():
    yaw = np.radians(np.linspace(-30, 30, 61))
    pose = np.zeros((61, 6), np.float32)
    pose[:, 1] = yaw
    targets = np.tile(np.float32([2.0, 5.0]), (61, 1))
    camera = eye_turn(targets, pose, "camera") * UNIT_DEG
    back = -EYE_CONTACT * np.degrees(yaw)
    assert np.allclose(camera[:, 0], np.clip(back, -MAX_EYE_DEG, MAX_EYE_DEG), atol=1e-4)
    assert not camera[:, 1].any()
    natural = eye_turn(targets, pose, "natural") * UNIT_DEG
    assert np.allclose(natural[:, 0], np.clip(back + 2.0, -MAX_EYE_DEG, MAX_EYE_DEG), atol=1e-4)
    assert np.allclose(natural[:, 1], 5.0)
    assert not eye_turn(targets, pose, "fixed").any()


def test_the_eyes_look_down_against_a_head_tipped_back_but_never_up():
    """Eye contact against pitch: a head tipped back (chin up, negative pitch) turns the eyes
    down by EYE_CONTACT of it; a nod (chin down) would need them up, which is never drawn."""
    pitch = np.radians(np.linspace(-10, 10, 21))
    pose = np.zeros((21, 6), np.float32)
    pose[:, 0] = pitch
    down = eye_turn(np.zeros((21, 2)), pose, "camera")[:, 1] * UNIT_DEG
    assert np.allclose(down, np.clip(-EYE_CONTACT * np.degrees(pitch), 0, None), atol=1e-4)


@pytest.mark.parametrize("mode", ["camera", "fixed"])
def test_the_cli_writes_the_gaze_of_its_mode(portrait_path, tmp_path, mode):
    out, motion = tmp_path / "idle.mp4", tmp_path / "idle.json"
    assert main(["generate", "--image", str(portrait_path), "--idle", "2", "--size", "96",
                 "--gaze", mode, "--export-motion", str(motion), "-o", str(out), "--quiet"]) == 0
    data = json.loads(motion.read_text())
    gaze = np.column_stack([data["expression"]["gaze_x"], data["expression"]["gaze_y"]])
    pitch, yaw = np.array(data["pose"]["pitch"]), np.array(data["pose"]["yaw"])
    assert np.abs(yaw).max() > 0.001
    expected = eye_turn(np.zeros((len(yaw), 2)), np.column_stack([pitch, yaw, 0 * yaw]), mode)
    assert np.allclose(gaze, expected, atol=1e-5) and (mode == "fixed") == (not gaze.any())
    assert data["meta"]["gaze"] == mode
