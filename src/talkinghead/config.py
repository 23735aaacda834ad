"""One frozen config per stage; every default is defined here, once."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

NUM_POSE_STYLES = 46
EMOTIONS = ("neutral", "happy", "sad", "surprised", "angry")
GAZES = ("natural", "camera", "fixed")
MAX_FREE_VIEW_DEG = 45.0
MAX_SCALE = 3.0  # expression and head-motion scales: beyond this the face tears
BACKENDS = ("embedded", "sadtalker")
DEVICES = ("auto", "cpu", "cuda")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?|other")


@dataclass(frozen=True)
class FaceConfig:
    """``preprocess``: crop mode (crop, extcrop, resize, full, extfull); ``size``: output side
    in pixels for the square modes (None: 512, or the face crop's own size when smaller);
    ``face_index``: which face when there are several, largest first."""

    preprocess: str = "crop"
    size: int | None = None
    face_index: int = 0


@dataclass(frozen=True)
class MotionConfig:
    """``expression_scale`` multiplies lip and face motion; ``head_motion_scale`` head motion;
    ``pose_style`` picks one of 46 head-motion styles; ``still`` keeps the source head pose;
    ``blink`` turns generated blinks on or off. ``yaw``, ``pitch``, ``roll``: free view, degrees
    interpolated evenly over the video (one value: constant), added to the generated pose (or
    the whole pose with ``still``). ``emotion`` (one of EMOTIONS) at ``emotion_strength`` 0..2
    is layered on speech. ``ref_pose`` / ``ref_blink``: videos whose head motion (relative to
    their first frame) / eyelids are copied, looped when short. ``language``: the speech's
    language, an ISO 639 code (``en``, ``zh``, ``pt-br``...) or ``other``; the phone recogniser
    is English, so for any other language the lips lean on the speech's loudness as well.
    ``gaze`` (one of GAZES): ``natural`` eyes hold the viewer's eye as the head moves and
    jump in saccades, ``camera`` only hold it, ``fixed`` stay as in the photo."""

    expression_scale: float = 1.0
    head_motion_scale: float = 1.0
    pose_style: int = 0
    still: bool = False
    blink: bool = True
    yaw: tuple[float, ...] = ()
    pitch: tuple[float, ...] = ()
    roll: tuple[float, ...] = ()
    emotion: str = "neutral"
    emotion_strength: float = 1.0
    ref_pose: str | None = None
    ref_blink: str | None = None
    language: str = "en"
    gaze: str = "natural"

    def __post_init__(self) -> None:
        if not 0 <= self.pose_style < NUM_POSE_STYLES:
            raise ValueError(f"pose style must be 0..{NUM_POSE_STYLES - 1}, got {self.pose_style}")
        if not all(0 <= s <= MAX_SCALE for s in (self.expression_scale, self.head_motion_scale)):
            raise ValueError(f"expression and head-motion scales must be within 0..{MAX_SCALE:g}, "
                             f"got {self.expression_scale:g} and {self.head_motion_scale:g}")
        if self.emotion not in EMOTIONS:
            raise ValueError(f"emotion must be one of {', '.join(EMOTIONS)}, got {self.emotion!r}")
        if self.gaze not in GAZES:
            raise ValueError(f"gaze must be one of {', '.join(GAZES)}, got {self.gaze!r}")
        if not 0 <= self.emotion_strength <= 2:
            raise ValueError(f"emotion strength must be within 0..2, got {self.emotion_strength}")
        if not LANGUAGE_CODE.fullmatch(self.language):
            raise ValueError(f"language must be an ISO 639 code such as en, zh, de, or 'other'; "
                             f"got {self.language!r}")
        for name in ("yaw", "pitch", "roll"):
            if not all(abs(v) <= MAX_FREE_VIEW_DEG for v in getattr(self, name)):  # NaN too
                raise ValueError(f"--{name} angles must lie within ±{MAX_FREE_VIEW_DEG:g} degrees")


@dataclass(frozen=True)
class VideoConfig:
    """``fps``: frames per second of the output; ``crf``, ``preset``: x264 quality (0
    lossless .. 51, lower is better and larger) and speed.

    ``superfast`` at CRF 20 costs about 28 % less CPU than ``veryfast`` and, on rendered
    talking heads (256² to 1024²), gives 1 dB higher PSNR and sharper faces, at 1.6-2× the
    bitrate (about 2.4 Mbit/s at 1024²).
    """

    fps: float = 25.0
    crf: int = 20
    preset: str = "superfast"

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be within 1..120, got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51 (lower: better quality), got {self.crf}")


@dataclass(frozen=True)
class Config:
    """Everything a generation needs besides its inputs. ``seed`` fixes all randomness;
    ``transcript``: the words spoken, for forced alignment (None: phone recognition).
    ``backend``: one of BACKENDS; ``checkpoints``: the folder of the official SadTalker files
    and ``device`` (one of DEVICES; auto: a CUDA GPU when torch sees one) where its networks
    run (the ``sadtalker`` backend only)."""

    face: FaceConfig = field(default_factory=FaceConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    seed: int = 0
    transcript: str | None = None
    backend: str = "embedded"
    checkpoints: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be a whole number 0 or more, got {self.seed!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.backend == "sadtalker" and not self.checkpoints:
            raise ValueError("the sadtalker backend needs --checkpoints DIR (the official "
                             "SadTalker v0.0.2 files)")

    def whole_recording_options(self) -> list[str]:
        """The options set here that need the whole recording before any frame (a transcript,
        reference videos, free view), by their command-line names."""
        m = self.motion
        return [name for name, on in (
            ("--transcript", bool(self.transcript)), ("--ref-pose", m.ref_pose is not None),
            ("--ref-blink", m.ref_blink is not None),
            ("--yaw/--pitch/--roll", bool(m.yaw or m.pitch or m.roll))) if on]
