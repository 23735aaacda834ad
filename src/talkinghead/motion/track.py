"""Assemble the MotionTrack: expression, head pose and blinks for every video frame."""
from __future__ import annotations

import numpy as np

from ..config import MotionConfig
from ..types import AudioFeatures, MotionTrack, ReferenceMotion
from .blink import BlinkSchedule
from .emotion import apply_emotion, configured_emotion, fade_in
from .expression import expression_track
from .gaze import GazeSchedule, gaze_rng, with_gaze
from .pose import breathing, free_view, pose_style, pose_track
from .reference import reference_blink, reference_pose


def num_frames_for(duration_s: float, fps: float) -> int:
    """Frames needed to cover ``duration_s`` seconds (at least one)."""
    return max(1, int(round(duration_s * fps)))


def make_motion(features: AudioFeatures, channels: tuple[str, ...], fps: float,
                config: MotionConfig, seed: int, ref_pose: ReferenceMotion | None = None,
                ref_blink: ReferenceMotion | None = None) -> MotionTrack:
    """Motion for the whole utterance. Same features, config and seed → identical track.

    ``ref_pose`` / ``ref_blink``: measured reference videos whose head pose / eyelids replace
    the generated ones (the reference's lips are never used).
    """
    n = num_frames_for(features.duration, fps)
    pose_rng, blink_rng, breath_rng = (np.random.default_rng(s)
                                       for s in np.random.SeedSequence(seed).spawn(3))
    emotion, strength = configured_emotion(config)
    motion_gain, blink_gain = emotion.gains(strength)
    expression = expression_track(features, channels, fps, n, config.expression_scale,
                                  config.language)
    expression = apply_emotion(expression, channels, fps, emotion, strength)
    pose = _pose(features, fps, n, config, pose_rng, breath_rng, ref_pose,
                 motion_gain, emotion.pitch_deg * strength)
    if ref_blink is not None:
        blink = reference_blink(ref_blink, fps, n)
    else:
        schedule = BlinkSchedule(blink_rng, fps, n, blink_gain, config.blink)
        blink = schedule.take(n, expression[:, channels.index("jaw_open")])
    gaze = GazeSchedule(gaze_rng(seed), fps, config.gaze == "natural",
                        blinks=config.blink and ref_blink is None)
    targets, glance_blinks = gaze.take(n, expression[:, channels.index("jaw_open")])
    expression = with_gaze(expression, channels, pose, targets, config.gaze)
    blink = np.maximum(blink, glance_blinks)
    meta = {"seed": seed, "pose_style": config.pose_style, "emotion": config.emotion,
            "emotion_strength": config.emotion_strength, "still": config.still,
            "language": config.language, "gaze": config.gaze}
    return MotionTrack(fps=fps, channels=channels, expression=expression, pose=pose, blink=blink,
                       meta=meta)


def _pose(features: AudioFeatures, fps: float, n: int, config: MotionConfig,
          rng: np.random.Generator, breath_rng: np.random.Generator,
          ref: ReferenceMotion | None, gain: float, pitch_deg: float) -> np.ndarray:
    """(T, 6) head pose: generated (or copied from ``ref``), plus bearing and free view."""
    if config.still:
        pose = np.zeros((n, 6), dtype=np.float32)
    elif ref is not None:
        pose = reference_pose(ref, fps, n) * np.float32(config.head_motion_scale)
    else:
        scale = config.head_motion_scale * gain
        pose = pose_track(features, fps, n, pose_style(config.pose_style), rng, scale)
        pose = pose + breathing(breath_rng, fps, n) * np.float32(config.head_motion_scale)
    pose[:, 0] += np.radians(pitch_deg) * fade_in(n, fps)
    for axis, degrees in enumerate((config.pitch, config.yaw, config.roll)):
        pose[:, axis] += free_view(degrees, n)
    return pose.astype(np.float32)
