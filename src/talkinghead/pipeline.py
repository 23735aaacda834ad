"""The pipeline: photo + speech → frames → mp4. Reads as numbered steps."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio.features import compute_features, iter_16k
from .audio.phones import align_phones, recognize_phones
from .config import Config
from .errors import UserError
from .face.crop import Framing
from .face.landmarks import find_upright_face
from .media import check_output_path, load_audio, load_image
from .face.tracking import track_video
from .motion.io import conform_channels, retime
from .motion.track import make_motion, num_frames_for
from .segments import PhraseMotion, StageClock
from .stream import MotionSource, PlannedMotion, Stream, fit_portrait, write_frames
from .types import AudioFeatures, FaceFit, MotionTrack, Phone, Portrait, ReferenceMotion, Waveform

Progress = Callable[[int, int], None]
CHUNK_S = 1.0  # seconds of audio per chunk fed to the animation loop


@dataclass
class Timings:
    """Seconds spent per stage, summed over the threads that ran it (render and encode run in
    parallel threads: their sum is more than the wall time)."""

    decode: float = 0.0
    face: float = 0.0
    phones: float = 0.0
    motion: float = 0.0
    render: float = 0.0
    encode: float = 0.0


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
        """Steps 1–3 for the whole recording at once: find and fit the face, frame it, hear
        the speech, plan the motion (``animate`` plans phrase by phrase instead, where it can)."""
        timings = timings or Timings()
        framing, fit, num_faces = self.face(portrait, timings)
        return Prepared(framing, fit, self.plan(fit, speech, timings, motion, phones), num_faces)

    def plan(self, fit: FaceFit, speech: Waveform, timings: Timings,
             motion: MotionTrack | None = None, phones: tuple[Phone, ...] | None = None) -> MotionTrack:
        """Steps 2–3, whole: the motion for ``fit``'s channels — ``motion`` conformed and retimed,
        or planned from the speech (timed phones and prosody → expression, pose, blinks)."""
        cfg = self.config
        if motion is not None:
            return retime(conform_channels(motion, fit.channels), cfg.video.fps)
        t = time.perf_counter()
        features = self.hear(speech, phones)
        timings.phones += time.perf_counter() - t
        t = time.perf_counter()
        motion = make_motion(features, fit.channels, cfg.video.fps, cfg.motion, cfg.seed,
                             *self.references())
        timings.motion += time.perf_counter() - t
        return motion

    def face(self, portrait: Portrait, timings: Timings) -> tuple[Framing, FaceFit, int]:
        """Step 1: detect, mesh, frame and fit the face → framing, fit, faces in the photo."""
        t = time.perf_counter()
        fitted = fit_portrait(portrait, self.config)
        timings.face += time.perf_counter() - t
        return fitted

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
        """Step 4: render every frame of a prepared motion, (H, W, 3) uint8, one at a time."""
        stream = Stream(config=self.config, face=(prepared.framing, prepared.fit),
                        motion=PlannedMotion(prepared.motion))
        return (f.pixels for f in stream.frames(()))

    def phrase_planned(self, motion: MotionTrack | None = None,
                       phones: tuple[Phone, ...] | None = None) -> bool:
        """Whether ``animate`` plans the motion phrase by phrase as it hears the speech
        (``segments.PhraseMotion``): recognized phones, generated pose and blinks, no free view
        (which is spread over the whole video). Otherwise it is planned whole first."""
        return motion is None and phones is None and not self.config.whole_recording_options()

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
        if self.config.backend == "sadtalker":
            return self.animate_neural(portrait, speech, check_output_path(output), progress, timings)
        framing, fit, num_faces = self.face(portrait, timings)
        if not self.phrase_planned(motion, phones):
            prepared = Prepared(framing, fit, self.plan(fit, speech, timings, motion, phones), num_faces)
            return self.write(prepared, speech, check_output_path(output), timings, progress)
        clock = StageClock()
        source = PhraseMotion(fit.channels, self.config, speech.duration, clock)
        total = num_frames_for(speech.duration, self.config.video.fps)
        result = self._write(framing, fit, source, total, num_faces, speech,
                             check_output_path(output), timings, progress)
        timings.phones += clock.phones
        timings.motion += clock.motion
        return result

    def animate_neural(self, portrait: Portrait, speech: Waveform, output: Path,
                       progress: Progress | None = None, timings: Timings | None = None) -> Result:
        """The ``sadtalker`` backend: official networks from ``config.checkpoints``, frames
        streamed into the mp4 one at a time (torch is imported here, lazily)."""
        timings = timings or Timings()
        cfg = self.config
        t = time.perf_counter()
        backend_module = _neural_backend()
        pixels, mesh, num_faces = find_upright_face(portrait.pixels, cfg.face.face_index)
        backend_module.check_supported(cfg)
        backend = backend_module.SadTalkerBackend(
            cfg.checkpoints, backend_module.model_size(cfg), backend_module.resolve_device(cfg.device),
            full=cfg.face.preprocess in ("full", "extfull"))
        timings.face += time.perf_counter() - t
        t = time.perf_counter()
        plan = backend.prepare(pixels, mesh, _at_16k(speech).samples, cfg)
        timings.motion += time.perf_counter() - t
        frames = _timed(backend.frames(plan), timings)
        count, encode = write_frames(frames, output, plan.compose.size, speech, cfg,
                                     _on_frame(progress, plan.num_frames))
        timings.encode += encode
        w, h = plan.compose.size
        return Result(Path(output), count, cfg.video.fps, w, h, num_faces, timings)

    def write(self, prepared: Prepared, speech: Waveform, output: Path, timings: Timings,
              progress: Progress | None = None) -> Result:
        """Steps 4–5: render the prepared motion and encode it with the speech into an mp4."""
        return self._write(prepared.framing, prepared.fit, PlannedMotion(prepared.motion),
                           prepared.motion.num_frames, prepared.num_faces, speech, output,
                           timings, progress)

    def _write(self, framing: Framing, fit: FaceFit, source: MotionSource, total: int,
               num_faces: int, speech: Waveform, output: Path, timings: Timings,
               progress: Progress | None = None) -> Result:
        """The speech through the animation loop (``stream.Stream``, fed 1 s chunks at 16 kHz)
        with motion from ``source``: ``total`` frames rendered in a background thread while
        this one encodes them and the speech into ``output`` (``timings.render`` and
        ``.encode`` are each thread's busy time; they overlap)."""
        stream = Stream(config=self.config, face=(framing, fit), motion=source)
        frames = (f.pixels for f in stream.frames(iter_16k(speech, CHUNK_S), speech.duration))
        count, encode = write_frames(frames, output, stream.size, speech, self.config,
                                     _on_frame(progress, total))
        timings.encode += encode
        timings.render += stream.render_seconds
        w, h = stream.size
        return Result(Path(output), count, self.config.video.fps, w, h, num_faces, timings)


def _on_frame(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    """``write_frames``' per-frame callback reporting ``progress(done, total)``, if any."""
    return (lambda done: progress(done, total)) if progress else None


def _timed(frames: Iterator[np.ndarray], timings: Timings) -> Iterator[np.ndarray]:
    """``frames``, adding the time spent producing each to ``timings.render``."""
    while True:
        t = time.perf_counter()
        frame = next(frames, None)
        timings.render += time.perf_counter() - t
        if frame is None:
            return
        yield frame


def _neural_backend():
    """``talkinghead.neural.backend``; UserError naming the extra when torch is missing."""
    try:
        from .neural import backend
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "safetensors"):
            raise UserError(f"the sadtalker backend needs {exc.name}: pip install "
                            "'talkinghead[sadtalker]'") from exc
        raise
    return backend


def _at_16k(speech: Waveform) -> Waveform:
    """The speech at 16 kHz (SadTalker's rate); linear resampling when it is not."""
    if speech.sample_rate == 16000:
        return speech
    n = int(round(len(speech.samples) * 16000 / speech.sample_rate))
    t = np.arange(n) * (speech.sample_rate / 16000)
    return Waveform(np.interp(t, np.arange(len(speech.samples)), speech.samples).astype(np.float32), 16000)
