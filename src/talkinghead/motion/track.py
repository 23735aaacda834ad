"""Assemble the MotionTrack: expression, head pose and blinks for every video frame."""
from __future__ import annotations

import numpy as np

from ..config import MotionConfig
from ..types import AudioFeatures, MotionTrack
from .blink import blink_track
from .expression import expression_track
from .pose import pose_style, pose_track


def num_frames_for(duration_s: float, fps: float) -> int:
    """Frames needed to cover ``duration_s`` seconds (at least one)."""
    return max(1, int(round(duration_s * fps)))


def make_motion(features: AudioFeatures, channels: tuple[str, ...], fps: float,
                config: MotionConfig, seed: int) -> MotionTrack:
    """Motion for the whole utterance. Same features, config and seed → identical track."""
    n = num_frames_for(features.duration, fps)
    pose_rng, blink_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    expression = expression_track(features, channels, fps, n, config.expression_scale)
    if config.still:
        pose = np.zeros((n, 6), dtype=np.float32)
    else:
        pose = pose_track(features, fps, n, pose_style(config.pose_style), pose_rng,
                          config.head_motion_scale)
    blink = blink_track(blink_rng, fps, n) if config.blink else np.zeros(n, dtype=np.float32)
    return MotionTrack(fps=fps, channels=channels, expression=expression, pose=pose, blink=blink,
                       meta={"seed": seed, "pose_style": config.pose_style})
