"""talkinghead: one portrait photo + one speech recording → a talking-head video.

    from talkinghead import Pipeline
    Pipeline().run("portrait.jpg", "speech.wav", "out.mp4")
"""
from .config import Config, FaceConfig, MotionConfig, VideoConfig
from .errors import AudioError, ImageError, NoFaceError, OutputError, TalkingHeadError, UserError
from .pipeline import Pipeline, Result
from .types import AudioFeatures, FaceFit, MotionTrack, Phone, Portrait, Waveform

__version__ = "0.1.0"
__all__ = [
    "Pipeline", "Result", "Config", "FaceConfig", "MotionConfig", "VideoConfig",
    "Portrait", "Waveform", "Phone", "AudioFeatures", "FaceFit", "MotionTrack",
    "TalkingHeadError", "UserError", "ImageError", "NoFaceError", "AudioError", "OutputError",
]
