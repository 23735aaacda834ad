"""--ref-pose / --ref-blink: a reference video rendered in code with known head turn, blinks and
mouth motion is tracked back; its blinks and turn come back, its lips never leak in."""
from __future__ import annotations

import numpy as np
import pytest

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.config import MotionConfig
from talkinghead.face.model import CHANNELS
from talkinghead.face.tracking import track_video
from talkinghead.media import VideoWriter, load_image
from talkinghead.motion.reference import closure_from_openness, looped, reference_pose
from talkinghead.motion.track import make_motion
from talkinghead.render.renderer import Renderer
from talkinghead.types import MotionTrack, ReferenceMotion

from test_motion import speech_like

FPS = 25.0
FRAMES = 50
BLINK_FRAMES = (15, 35)
YAW_END_DEG = 12.0


@pytest.fixture(scope="module")
def reference_video(tmp_path_factory, portrait_path):
    """A 2 s video of the portrait turning to yaw 12°, blinking at BLINK_FRAMES, talking."""
    empty = MotionTrack(FPS, (), np.zeros((1, 0), np.float32), np.zeros((1, 6), np.float32),
                        np.zeros(1, np.float32))
    prepared = Pipeline(Config(face=FaceConfig(size=192))).prepare(load_image(portrait_path), None,
                                                                   motion=empty)
    renderer = Renderer(prepared.framing, prepared.fit)
    blink = np.zeros(FRAMES)
    for b in BLINK_FRAMES:
        blink[b - 2:b + 3] = [0.5, 0.9, 1.0, 0.8, 0.4]
    expression = np.zeros((FRAMES, len(CHANNELS)), np.float32)
    expression[:, CHANNELS.index("jaw_open")] = 0.5 + 0.5 * np.sin(np.arange(FRAMES) * 0.9)
    yaw = np.radians(np.linspace(0, YAW_END_DEG, FRAMES))
    path = tmp_path_factory.mktemp("ref") / "ref.mp4"
    with VideoWriter(path, 192, 192, FPS) as writer:
        for i in range(FRAMES):
            pose = np.array([0, yaw[i], 0, 0, 0, 0], np.float32)
            writer.write(renderer.render(expression[i], pose, float(blink[i])))
    return path


@pytest.fixture(scope="module")
def tracked(reference_video) -> ReferenceMotion:
    return track_video(reference_video)


def test_reference_blinks_appear_at_their_times(tracked):
    closure = closure_from_openness(tracked.openness, tracked.fps)
    for b in BLINK_FRAMES:
        assert closure[b - 1:b + 2].max() > 0.8
    far = np.ones(FRAMES, bool)
    for b in BLINK_FRAMES:
        far[b - 4:b + 5] = False
    assert closure[far].max() < 0.1


def test_reference_blink_copies_eyelids_only_never_lips(tracked):
    features = speech_like(2.0)
    own = make_motion(features, CHANNELS, FPS, MotionConfig(), seed=0)
    copied = make_motion(features, CHANNELS, FPS, MotionConfig(), seed=0, ref_blink=tracked)
    assert np.array_equal(copied.expression, own.expression)   # the reference's talking is ignored
    assert np.array_equal(copied.pose, own.pose)
    peaks = [int(np.argmax(copied.blink[b - 2:b + 3])) + b - 2 for b in BLINK_FRAMES]
    assert all(abs(p - b) <= 1 for p, b in zip(peaks, BLINK_FRAMES))


def test_reference_pose_recovers_the_sign_and_size_of_a_rendered_yaw(tracked):
    yaw = np.degrees(tracked.pose[:, 1])
    assert abs(yaw[0]) < 1.0
    assert 0.4 * YAW_END_DEG < yaw[-5:].mean() < 1.5 * YAW_END_DEG
    assert np.corrcoef(yaw, np.linspace(0, YAW_END_DEG, FRAMES))[0, 1] > 0.9
    assert np.abs(np.degrees(tracked.pose[:, [0, 2]])).max() < 0.5 * YAW_END_DEG


def test_reference_is_resampled_and_looped_when_short():
    ref = ReferenceMotion(10.0, np.arange(10, dtype=np.float32)[:, None].repeat(6, 1),
                          np.ones(10, np.float32))
    pose = reference_pose(ref, 20.0, 45)
    assert pose[0, 1] == 0 and pose[1, 1] == pytest.approx(0.5) and pose[20, 1] == 0
    assert np.array_equal(looped(np.arange(3.0), 1.0, 1.0, 7), [0, 1, 2, 0, 1, 2, 0])
