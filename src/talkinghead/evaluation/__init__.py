"""Independent measurement of talking-head videos (dlib landmarks; see docs/METRICS.md).

dlib is imported only inside this package, and only when a ``Landmarker`` is made.
"""
from __future__ import annotations

from .cpbd import cpbd, video_cpbd
from .landmarks import Landmarker, Track
from .metrics import (
    AudioSync,
    audio_energy,
    beat_alignment,
    bilabial_scores,
    blinks_per_minute,
    detect_blinks,
    eye_aspect_ratio,
    head_motion_ratio,
    head_motion_std,
    head_pose,
    identity_distance,
    inter_ocular,
    landmark_jitter,
    mouth_opening,
    pearson,
    resample,
    sharpness_ratio,
    silence_mask,
    silence_rest_ratio,
    speech_threshold,
    sync_with_audio,
    sync_with_reference,
)
from .runner import (
    Generate,
    Report,
    Row,
    evaluate_clip,
    evaluate_clips,
    format_markdown,
    format_table,
    main_eval,
    still_video,
)
from .synthetic import SyntheticRow, format_synthetic, main_synthetic, synthetic_scores

__all__ = [
    "AudioSync", "Generate", "Landmarker", "Report", "Row", "SyntheticRow", "Track",
    "audio_energy", "beat_alignment", "bilabial_scores", "blinks_per_minute", "cpbd", "detect_blinks",
    "evaluate_clip", "evaluate_clips", "eye_aspect_ratio", "format_markdown", "format_synthetic",
    "format_table", "head_motion_ratio", "head_motion_std", "head_pose", "identity_distance",
    "inter_ocular", "landmark_jitter", "main_eval", "main_synthetic", "mouth_opening", "pearson",
    "resample", "sharpness_ratio", "silence_mask", "silence_rest_ratio", "speech_threshold",
    "still_video", "sync_with_audio", "sync_with_reference", "synthetic_scores", "video_cpbd",
]
