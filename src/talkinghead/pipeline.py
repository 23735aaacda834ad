"""The pipeline: photo + speech → frames → mp4. Reads as numbered steps."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio.features import compute_features
from .audio.phones import align_phones, recognize_phones
from .config import Config
from .face.crop import Framing, plan_framing
from .face.landmarks import find_face
from .face.model import fit_face
from .media import VideoWriter, check_output_path, load_audio, load_image
from .face.tracking import track_video
from .motion.io import conform_channels, retime
from .motion.track import make_motion
from .render.prefetch import Prefetch
from .render.renderer import Renderer
from .types import AudioFeatures, FaceFit, MotionTrack, Phone, Portrait, ReferenceMotion, Waveform

Progress = Callable[[int, int], None]


@dataclass
class Timings:
    """Seconds spent per stage."""

    decode: float = 0.0
    face: float = 0.0
    phones: float = 0.0
    motion: float = 0.0
    render: float = 0.0
    encode: float = 0.0

    def total(self) -> float:
        return self.decode + self.face + self.phones + self.motion + self.render + self.encode


@dataclass(frozen=True)
class Prepared:
    """Everything needed to render: the framed photo, the fitted face and the motion."""

    framing: Framing
    fit: FaceFit
    motion: MotionTrack
    num_faces: int


@dataclass(frozen=True)
class Result:
    """What ``Pipeline.run`` made: the mp4 ``path``, its frame count, size and stage timings."""

    path: Path
    num_frames: int
    fps: float
    width: int
    height: int
    num_faces: int
    timings: Timings = field(default_factory=Timings)


class Pipeline:
    """Portrait + speech → talking-head video with the embedded (offline, CPU) backend."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()

    def prepare(self, portrait: Portrait, speech: Waveform, timings: Timings | None = None,
                motion: MotionTrack | None = None, phones: tuple[Phone, ...] | None = None) -> Prepared:
        """Steps 1–4: find and fit the face, frame it, hear the speech, plan the motion."""
        timings = timings or Timings()
        cfg = self.config
        t = time.perf_counter()
        # 1. face: detect, mesh, frame, fit the linear face model
        mesh, num_faces = find_face(portrait.pixels, cfg.face.face_index)
        framing = plan_framing(portrait.pixels, mesh, cfg.face.preprocess, cfg.face.size)
        fit = fit_face(framing.map_points(mesh), (framing.image.shape[1], framing.image.shape[0]))
        timings.face += time.perf_counter() - t
        if motion is None:
            # 2. speech: timed phones and prosody
            t = time.perf_counter()
            features = self.hear(speech, phones)
            timings.phones += time.perf_counter() - t
            # 3. motion: expression, head pose and blinks per frame
            t = time.perf_counter()
            motion = make_motion(features, fit.channels, cfg.video.fps, cfg.motion, cfg.seed,
                                 *self.references())
            timings.motion += time.perf_counter() - t
        else:
            motion = retime(conform_channels(motion, fit.channels), cfg.video.fps)
        return Prepared(framing, fit, motion, num_faces)

    def references(self) -> tuple[ReferenceMotion | None, ReferenceMotion | None]:
        """Head pose and eyelids tracked on the ``--ref-pose`` / ``--ref-blink`` videos."""
        m = self.config.motion
        pose = track_video(m.ref_pose) if m.ref_pose else None
        blink = pose if m.ref_blink and m.ref_blink == m.ref_pose else \
            (track_video(m.ref_blink) if m.ref_blink else None)
        return pose, blink

    def hear(self, speech: Waveform, phones: tuple[Phone, ...] | None = None) -> AudioFeatures:
        """Timed phones (given, aligned to the transcript, or recognized) and prosody."""
        transcript = self.config.transcript
        if phones is None:
            phones = align_phones(speech, transcript) if transcript else recognize_phones(speech)
        return compute_features(speech, phones)

    def frames(self, prepared: Prepared) -> Iterator[np.ndarray]:
        """Step 4: render every frame, (H, W, 3) uint8, one at a time."""
        renderer = Renderer(prepared.framing, prepared.fit)
        m = prepared.motion
        for i in range(m.num_frames):
            yield renderer.render(m.expression[i], m.pose[i], float(m.blink[i]))

    def run(self, image: str | Path, audio: str | Path, output: str | Path,
            progress: Progress | None = None, motion: MotionTrack | None = None) -> Result:
        """Files in, mp4 out. The output appears only when complete."""
        timings = Timings()
        out = check_output_path(output, [image, audio])
        t = time.perf_counter()
        portrait, speech = load_image(image), load_audio(audio)
        timings.decode += time.perf_counter() - t
        return self.animate(portrait, speech, out, progress, motion, timings=timings)

    def animate(self, portrait: Portrait, speech: Waveform, output: str | Path,
                progress: Progress | None = None, motion: MotionTrack | None = None,
                phones: tuple[Phone, ...] | None = None, timings: Timings | None = None) -> Result:
        """In-memory photo and speech → mp4 at ``output``; ``phones``: known timings, if any."""
        timings = timings or Timings()
        prepared = self.prepare(portrait, speech, timings, motion, phones)
        return self.write(prepared, speech, check_output_path(output), timings, progress)

    def write(self, prepared: Prepared, speech: Waveform, output: Path, timings: Timings,
              progress: Progress | None = None) -> Result:
        """Step 5: stream the rendered frames and the speech into an mp4. Frames are rendered
        in a background thread while this one encodes (``timings.render`` and ``.encode`` are
        each thread's busy time; they overlap)."""
        h, w = prepared.framing.image.shape[:2]
        total = prepared.motion.num_frames
        video = self.config.video
        with VideoWriter(output, w, h, video.fps, speech, video.crf, video.preset) as writer, \
                Prefetch(self.frames(prepared)) as frames:
            for i, frame in enumerate(frames):
                t = time.perf_counter()
                writer.write(frame)
                timings.encode += time.perf_counter() - t
                if progress:
                    progress(i + 1, total)
        timings.render += frames.busy
        return Result(Path(output), total, video.fps, w, h, prepared.num_faces, timings)
