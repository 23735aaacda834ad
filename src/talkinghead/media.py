"""Reading photos and sound, writing and probing videos (mp4, mov, mkv, webm).

Every failure a user can cause (a missing, empty, corrupt or huge file; an output folder that does
not exist or cannot be written) surfaces as an ``ImageError``, ``AudioError`` or ``OutputError``
whose message says what to do. Mistakes of the calling code (odd frame sizes, wrong arrays) raise
``ValueError``.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import math
import mmap
import os
import re
import secrets
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NoReturn

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from talkinghead.errors import AudioError, ImageError, OutputError
from talkinghead.quiet import native_stderr_silenced
from talkinghead.types import Portrait, Waveform

PathLike = str | os.PathLike

MAX_IMAGE_PIXELS = 150_000_000
"""Photos with more pixels than this are refused before their pixels are decoded."""

MAX_IMAGE_SIDE = 4096
"""Photos whose long side exceeds this many pixels are downscaled while loading: nothing downstream
uses more (``full`` mode renders at most 1920 px), and it bounds memory. JPEGs are decoded at a
reduced scale directly (libjpeg DCT scaling), so a 10,000 px JPEG never exists at full size."""

MAX_AUDIO_SECONDS = 2 * 3600
"""Longer recordings are refused while decoding (16 kHz float32 is 230 MB per hour, on disk)."""

IN_MEMORY_SECONDS = 60.0
"""Decoded recordings up to this long stay in memory; longer ones go to a temporary file."""

SPILL_DIR: str | None = None
"""Folder of those temporary files; None: the system's (``TMPDIR``, else ``/tmp``)."""

AUDIO_RATES_HZ = (1000, 768_000)
"""Sample rates a real recording can have; anything outside marks a corrupt header."""

AUDIO_TRACK_RATE = 48_000
"""Hz of the audio track that ``VideoWriter`` muxes, whatever the rate of the waveform."""

_SAMPLE_BYTES = 4  # float32
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA"})
_WIDE_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


# --------------------------------------------------------------------------------------------
# shared checks


def _existing_file(path: PathLike, what: str, error: type[Exception]) -> Path:
    """``path`` as a Path after checking it names a non-empty, readable file; else ``error``."""
    p = Path(path)
    if not p.exists():
        raise error(f"{what} file not found: {p}. Check the path and the spelling.")
    if p.is_dir():
        raise error(f"{p} is a folder, not an {what} file. Give the path of the file itself.")
    if not os.access(p, os.R_OK):
        raise error(f"cannot read the {what} file {p}: permission denied. Check its permissions.")
    if p.stat().st_size == 0:
        raise error(f"the {what} file is empty (0 bytes): {p}. Re-export or re-download it.")
    return p


# --------------------------------------------------------------------------------------------
# images


def load_image(path: PathLike, max_side: int | None = MAX_IMAGE_SIDE) -> Portrait:
    """Decode any Pillow-readable photo into (H, W, 3) uint8 RGB, EXIF orientation applied;
    of a video file (any format ffmpeg reads), its first frame.

    Transparent pixels are composited over white; 16-bit images are scaled (not clipped) to 8 bits.
    A photo longer than ``max_side`` pixels is downscaled (antialiased) so that its long side is
    ``max_side``; None keeps every pixel. Raises ``ImageError`` for a missing, empty, non-image,
    truncated, corrupt or too-large file.
    """
    p = _existing_file(path, "image", ImageError)
    try:
        with warnings.catch_warnings():
            # Pillow warns from ~89 Mpx on; our own, higher limit is checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Damaged metadata (EXIF, TIFF tags) makes Pillow warn and go on; the pixels decide.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(p) as im:
                _refuse_huge(im.size, p)
                _draft(im, max_side)
                _decode_pixels(im)
                upright = _upright(_shrunk(im, max_side))
    except Image.DecompressionBombError as exc:
        raise ImageError(_too_large_message(p, _bomb_detail(exc))) from exc
    except UnidentifiedImageError as exc:
        frame = _first_video_frame(p)
        if frame is None:
            raise ImageError(
                f"{p} is not an image that can be read (unknown or unsupported format). "
                "Use a JPEG or PNG photo, or a video (its first frame is used)."
            ) from exc
        _refuse_huge(frame.size, p)
        upright = _shrunk(frame, max_side)
    except (OSError, SyntaxError, EOFError, ValueError, IndexError) as exc:
        raise ImageError(
            f"the image file {p} is truncated or corrupt ({exc}). "
            "Re-export the photo, or try another file."
        ) from exc
    return Portrait(pixels=_to_rgb(upright))


def _first_video_frame(path: Path) -> Image.Image | None:
    """The first frame of a video file, as SadTalker takes a video source; None when ffmpeg
    finds no decodable video in the file."""
    try:
        with _open_video(path) as container:
            for frame in container.decode(container.streams.video[0]):
                return frame.to_image()
    except (av.FFmpegError, OSError, ValueError):
        return None
    return None


def _decode_pixels(im: Image.Image) -> None:
    """Decode ``im``'s pixels. libtiff (which Pillow uses for compressed TIFFs) prints its
    warnings and errors straight to file descriptor 2; for TIFFs that is silenced meanwhile."""
    if im.format != "TIFF":
        im.load()
        return
    with native_stderr_silenced():
        im.load()


def _refuse_huge(size: tuple[int, int], path: Path) -> None:
    """Raise ``ImageError`` if ``size`` (width, height) in pixels exceeds ``MAX_IMAGE_PIXELS``."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(_too_large_message(path, f"{width}x{height} = {width * height:,} pixels"))


def _bomb_detail(exc: Image.DecompressionBombError) -> str:
    """'N pixels' from Pillow's own decompression-bomb message, else the message itself."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,} pixels" if found else str(exc)


def _too_large_message(path: Path, detail: str) -> str:
    return (
        f"the image {path} is too large ({detail}; the limit is {MAX_IMAGE_PIXELS:,} pixels). "
        "Downscale it, e.g. to 4000 pixels on the long side, and try again."
    )


def _draft(im: Image.Image, max_side: int | None) -> None:
    """Ask a JPEG decoder for a 1/2, 1/4 or 1/8 scale that still has ``max_side`` on the long side."""
    if max_side is None or not isinstance(im, JpegImagePlugin.JpegImageFile):
        return
    scale = max_side / max(im.size)
    if scale < 1:
        im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))


def _shrunk(im: Image.Image, max_side: int | None) -> Image.Image:
    """``im`` downscaled to ``max_side`` pixels on its long side; ``im`` itself when small enough.

    Palette and bilevel images are converted first, so that they are filtered, not subsampled.
    """
    if max_side is None or max(im.size) <= max_side:
        return im
    if im.mode in ("1", "P", "PA"):
        im = im.convert(_palette_target(im))
    scale = max_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _palette_target(im: Image.Image) -> str:
    """The mode a palette or bilevel image becomes before resampling: RGBA, RGB or L."""
    if im.mode == "PA" or "transparency" in im.info:
        return "RGBA"
    return "L" if im.mode == "1" else "RGB"


def _upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation tag says; ``im`` itself when there is nothing to do."""
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in (None, 1):
            return im
        turned = ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, AttributeError):
        # A damaged EXIF block should not cost the user the photo.
        return im
    return turned if turned is not None else im


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 contiguous RGB array (a fresh, writable copy)."""
    if im.mode in _WIDE_GRAY_MODES:
        return _wide_gray_to_rgb(im)
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        im = _over_white(im)
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode != "RGB":
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise ImageError(
                f"images in colour mode {im.mode!r} are not supported ({exc}). "
                "Save the photo as an ordinary RGB JPEG or PNG."
            ) from exc
    # tobytes + frombuffer is faster than np.array(im); the copy makes the array writable.
    flat = np.frombuffer(im.tobytes(), dtype=np.uint8)
    return flat.reshape(im.height, im.width, 3).copy()


def _over_white(im: Image.Image) -> Image.Image:
    """RGB image: ``im`` with its alpha (or transparent palette index) composited over white."""
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _wide_gray_to_rgb(im: Image.Image) -> np.ndarray:
    """16-bit (or 32-bit integer) gray -> (H, W, 3) uint8, 0..65535 scaled to 0..255 rounded."""
    gray = np.clip(np.asarray(im), 0, 65535).astype(np.uint32)
    eight = ((gray + 128) // 257).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(eight[:, :, None], 3, axis=2))


# --------------------------------------------------------------------------------------------
# audio


def load_audio(path: PathLike, sample_rate: int = 16000,
               in_memory_seconds: float | None = None) -> Waveform:
    """Decode the first audio track of any file ffmpeg reads into mono float32 at ``sample_rate``.

    The container is recognised by its content, not its extension. Channels are downmixed and the
    rate converted by libswresample while decoding, frame by frame. A recording longer than
    ``in_memory_seconds`` (None: ``IN_MEMORY_SECONDS``) is kept in an unnamed temporary file
    (in ``SPILL_DIR``), not in memory: the Waveform reads pieces from it (``Waveform.read``), and
    the file vanishes with the Waveform, on any error, and when the process ends. Raises
    ``AudioError`` for a missing, empty, unreadable or corrupt file, a file without an audio
    track, no samples, or no room for the temporary file.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    p = _existing_file(path, "audio", AudioError)
    keep = IN_MEMORY_SECONDS if in_memory_seconds is None else in_memory_seconds
    sink = _SampleSink(int(keep * sample_rate))
    try:
        _decode_file(p, sample_rate, sink)
        return sink.waveform(int(sample_rate))
    except BaseException:  # Ctrl-C included: the temporary file goes at once
        sink.discard()
        raise


def _decode_file(path: Path, sample_rate: int, sink: _SampleSink) -> None:
    """Decode ``path``'s first audio track into ``sink``; every failure as ``AudioError``."""
    try:
        with av.open(str(path), mode="r") as container:
            _decode_mono(container, _first_audio_stream(container, path), sample_rate, sink)
    except AudioError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise AudioError(
            f"cannot decode the audio file {path} ({_reason(exc)}). It may be corrupt or in a "
            "format ffmpeg does not read; convert it to WAV or MP3 and try again."
        ) from exc
    if sink.size == 0:
        raise AudioError(f"no audio samples could be decoded from {path}; the recording is empty.")


def _sanitized(chunk: np.ndarray) -> np.ndarray:
    """(n,) float32 copy of ``chunk`` with NaN → 0, ±inf → ±1, everything clipped to [-1, 1].

    Float files can hold NaN or infinities (a broken recorder, a damaged file); neither the
    analysis nor the AAC encoder may see them.
    """
    part = np.array(chunk, dtype=np.float32).reshape(-1)
    np.nan_to_num(part, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(part, -1.0, 1.0, out=part)


def _reason(exc: BaseException) -> str:
    """The human part of a decoding error: ffmpeg's text without its errno and file name."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


def _first_audio_stream(container: av.container.InputContainer, path: Path) -> av.AudioStream:
    if not container.streams.audio:
        raise AudioError(
            f"the file {path} has no audio track. Give a speech recording (WAV, MP3, M4A...) "
            "or a video that has sound."
        )
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        raise AudioError(
            f"the audio in {path} is in a codec ffmpeg cannot decode, or the file is corrupt. "
            "Convert it to WAV or MP3 and try again."
        )
    rate = stream.codec_context.sample_rate or stream.rate or 0
    if not AUDIO_RATES_HZ[0] <= rate <= AUDIO_RATES_HZ[1]:
        raise AudioError(
            f"the audio file {path} claims a sample rate of {rate:,} Hz, which no recording has "
            "(8,000 to 192,000 Hz is usual); its header is probably corrupt. Re-export it as WAV."
        )
    return stream


def _hours(seconds: float) -> str:
    """'2 hours', '1 hour' or '90 s'."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hour{'s' if seconds > 3600 else ''}"
    return f"{seconds:g} s"


def _decode_mono(container: av.container.InputContainer, stream: av.AudioStream,
                 sample_rate: int, sink: _SampleSink) -> None:
    """Decode ``stream`` into ``sink`` as mono float32 at ``sample_rate``, one frame at a time."""
    # rematrix_maxval=1 scales the downmix so channels are averaged: a loud stereo file cannot clip.
    resampler = av.AudioResampler(
        format="flt", layout="mono", rate=sample_rate, options={"rematrix_maxval": "1.0"}
    )
    sink.expect(_expected_samples(container, stream, sample_rate))
    limit = MAX_AUDIO_SECONDS * sample_rate
    pending: list[np.ndarray] = []  # decoded frames (~1000 samples each), added a second at a time
    held = 0
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            pending.append(out.to_ndarray().reshape(-1))
            held += pending[-1].size
        if sink.size + held > limit:
            raise AudioError(
                f"the recording is longer than {_hours(MAX_AUDIO_SECONDS)}, the most one video "
                "may last; split it into shorter parts and make one video from each."
            )
        if held >= sample_rate:
            sink.add(np.concatenate(pending))
            pending, held = [], 0
    pending += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    if pending:
        sink.add(np.concatenate(pending))


class _SampleSink:
    """Where decoded samples go: one preallocated array while the recording is at most
    ``memory_limit`` samples long, then an unnamed temporary file (``_SampleFile``)."""

    def __init__(self, memory_limit: int) -> None:
        self._memory_limit = max(int(memory_limit), 0)
        self._memory = np.empty(0, dtype=np.float32)
        self._file: _SampleFile | None = None
        self.size = 0

    def expect(self, samples: int) -> None:
        """Reserve memory for ``samples`` (as far as they will be kept in memory). Pages past
        the end are never touched and cost nothing."""
        self._memory = np.empty(min(max(int(samples), 1 << 16), self._memory_limit), np.float32)

    def add(self, chunk: np.ndarray) -> None:
        """Append decoded samples (any shape; flattened), sanitized (``_sanitized``)."""
        part = _sanitized(chunk)
        end = self.size + part.size
        if self._file is None and end > self._memory_limit:
            self._file = _SampleFile.create()
            self._file.append(self._memory[:self.size])
            self._memory = np.empty(0, dtype=np.float32)
        if self._file is not None:
            self._file.append(part)
        else:
            self._grow(end)
            self._memory[self.size:end] = part
        self.size = end

    def _grow(self, end: int) -> None:
        """Make the array hold at least ``end`` samples (by half again, at most the limit)."""
        if end > self._memory.size:
            grown = np.empty(min(max(end, int(self._memory.size * 1.5)), self._memory_limit),
                             dtype=np.float32)
            grown[:self.size] = self._memory[:self.size]
            self._memory = grown

    def waveform(self, sample_rate: int) -> Waveform:
        """The samples added so far as a Waveform (in memory, or read from the file)."""
        if self._file is None:
            return Waveform(samples=self._memory[:self.size], sample_rate=sample_rate)
        self._file.finish()
        return Waveform(samples=self._file.mapped(), sample_rate=sample_rate, reader=self._file)

    def discard(self) -> None:
        """Give back the memory and the temporary file (decoding failed)."""
        self._memory = np.empty(0, dtype=np.float32)
        if self._file is not None:
            self._file.close()


class _SampleFile:
    """(N,) native float32 samples in an unnamed temporary file in ``SPILL_DIR``.

    The file has no name in the file system (POSIX unlinks it at once), so it disappears when
    closed, when this object is garbage-collected, or when the process ends, however it ends.
    Reads are explicit (not through a memory map), so that a piece read costs memory only while
    it is used; they are safe from several threads.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lock = threading.Lock()
        self.size = 0
        self._closer = weakref.finalize(self, file.close)

    @classmethod
    def create(cls) -> _SampleFile:
        try:
            return cls(tempfile.TemporaryFile(dir=SPILL_DIR))
        except OSError as exc:
            _raise_spill_error(exc)

    def append(self, samples: np.ndarray) -> None:
        """Write (n,) float32 samples after those already written."""
        try:
            self._file.write(memoryview(np.ascontiguousarray(samples, dtype=np.float32)))
        except OSError as exc:
            self.close()
            _raise_spill_error(exc)
        self.size += samples.size

    def finish(self) -> None:
        """Push buffered writes to the file (a full disk shows here as ``AudioError``)."""
        try:
            with self._lock:
                self._file.flush()
        except OSError as exc:
            self.close()
            _raise_spill_error(exc)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) (within 0..N): a fresh (stop - start,) float32 array."""
        out = np.empty(stop - start, dtype=np.float32)
        with self._lock:
            self._file.seek(start * _SAMPLE_BYTES)
            got = self._file.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise OSError(errno.EIO, f"read {got} of {out.nbytes} bytes of decoded audio")
        return out

    def mapped(self) -> np.ndarray:
        """All N samples as a read-only (N,) float32 memory map (resident only where touched)."""
        view = mmap.mmap(self._file.fileno(), self.size * _SAMPLE_BYTES, access=mmap.ACCESS_READ)
        return np.frombuffer(view, dtype=np.float32)

    def close(self) -> None:
        """Delete the file now (maps already handed out keep their pages readable)."""
        self._closer()


def _raise_spill_error(exc: OSError) -> NoReturn:
    """The ``AudioError`` for a temporary file that cannot be created or written."""
    folder = SPILL_DIR or tempfile.gettempdir()
    if exc.errno == errno.ENOSPC:
        reason = "the disk is full"
    else:
        reason = _reason(exc)
    raise AudioError(
        f"cannot keep the decoded audio in the temporary folder {folder} ({reason}; it takes "
        "about 230 MB per hour of audio). Free some space there, or set TMPDIR to a folder on "
        "a disk with room."
    ) from exc


def _expected_samples(container: av.container.InputContainer, stream: av.AudioStream,
                      sample_rate: int) -> int:
    """Samples at ``sample_rate`` that the container says it holds, plus a little; capped."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        seconds = 60.0
    seconds = min(max(seconds, 0.0), MAX_AUDIO_SECONDS + 1.0)
    return int(seconds * 1.01 * sample_rate) + sample_rate


# --------------------------------------------------------------------------------------------
# output paths


def write_wav(path: PathLike, waveform: Waveform) -> Path:
    """Write mono 16-bit PCM wav (samples clipped to [-1, 1]), 10 s at a time; returns the path."""
    import wave

    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(waveform.sample_rate))
        for block in waveform.blocks(10 * int(waveform.sample_rate)):
            f.writeframes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
    return Path(path)


def check_output_path(out: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """Fail early, with ``OutputError``, if ``out`` cannot be written or would overwrite an input.

    Checks: the folder exists and is writable, ``out`` is not a folder, ``out`` is not the same
    file as any of ``inputs`` (compared after resolving links). Returns ``out`` as a Path.
    """
    out = Path(out)
    folder = out.parent
    if not folder.exists():
        raise OutputError(f"the output folder does not exist: {folder}. Create it first.")
    if not folder.is_dir():
        raise OutputError(f"the output's parent {folder} is not a folder. Choose another path.")
    if out.is_dir():
        raise OutputError(f"the output path {out} is a folder; give a file name like out.mp4.")
    if _read_only(folder):
        raise OutputError(f"the output folder {folder} is on a read-only file system. "
                          "Choose another output folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"no permission to write in {folder}. Choose another output folder.")
    for source in inputs:
        if _same_file(out, Path(source)):
            raise OutputError(
                f"the output {out} is the input file {source}; writing it would destroy the "
                "input. Choose another output name."
            )
    video_format(out)
    return out


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only (where it can be told)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


def even_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded down to even numbers (at least 2), as yuv420p H.264 requires.

    ``VideoWriter`` refuses odd sizes; crop frames to this size before writing them.
    """
    return max(2, width - width % 2), max(2, height - height % 2)


# --------------------------------------------------------------------------------------------
# writing video

@dataclass(frozen=True)
class VideoFormat:
    """How a video file is written: the ffmpeg ``muxer``, the ``video`` and ``audio`` encoders,
    the samples per audio frame that encoder takes and its bit rate (bit/s)."""

    muxer: str
    video: str
    audio: str
    audio_frame: int
    audio_bit_rate: int


_H264_AAC = ("libx264", "aac", 1024, 128_000)
VIDEO_FORMATS = {
    ".mp4": VideoFormat("mp4", *_H264_AAC),
    ".m4v": VideoFormat("mp4", *_H264_AAC),
    ".mov": VideoFormat("mov", *_H264_AAC),
    ".mkv": VideoFormat("matroska", *_H264_AAC),
    ".webm": VideoFormat("webm", "libvpx-vp9", "libopus", 960, 64_000),
}
"""The formats written, by file extension (a name without one gets mp4)."""


def video_format(path: PathLike) -> VideoFormat:
    """The ``VideoFormat`` for ``path``'s extension; ``OutputError`` for one not written."""
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in VIDEO_FORMATS:
        names = list(VIDEO_FORMATS)
        raise OutputError(f"cannot write {Path(path).name}: talkinghead writes videos as "
                          f"{', '.join(names[:-1])} or {names[-1]}. Choose one of those.")
    return VIDEO_FORMATS.get(suffix, VIDEO_FORMATS[".mp4"])


# A talking head has no scene cuts, and a fixed B-frame pattern suits its steady motion: deciding
# neither per frame takes 14-18 % of x264's CPU off at 512² and 1024², for the same size and PSNR.
X264_PARAMS = "b-adapt=0:scenecut=0"


class VideoWriter:
    """Streams RGB frames into a video file, with an optional audio track: H.264 and AAC in mp4,
    m4v, mov or mkv, VP9 and Opus in webm, by ``path``'s extension (``video_format``).

    Use as a context manager. Each ``write`` encodes its frame at once, and the audio is encoded
    in step with the video clock, so memory does not grow with the length of the video. The file
    is written to a hidden temporary file beside ``path`` (``temp_name``) and moved onto ``path``
    only when the ``with`` block ends without an exception; otherwise the temporary file is
    deleted and any file already at ``path`` is left untouched. Temporary files of the same
    ``path`` left by killed processes are removed when the next writer starts. On close the audio is trimmed or padded with silence to
    last exactly ``frames / fps`` seconds. The audio track is always 48 kHz mono. ``crf`` and
    ``preset`` are x264's; VP9 takes ``crf`` + 8 (about the same quality; 0 is lossless in both).

    ``width`` and ``height`` must be even (see ``even_size``); ``ValueError`` otherwise.
    """

    def __init__(
        self,
        path: PathLike,
        width: int,
        height: int,
        fps: float = 25.0,
        audio: Waveform | None = None,
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        _check_video_params(width, height, fps, crf)
        self.path = check_output_path(path)
        self.width, self.height = int(width), int(height)
        self.fps = float(fps)
        self.frames_written = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._closed = False
        self._tmp = _reserve_temp(self.path)
        form = video_format(self.path)
        try:
            self._container = av.open(str(self._tmp), mode="w", format=form.muxer,
                                      container_options=_MUXER_OPTIONS.get(form.muxer, {}))
            self._video = _add_video_stream(self._container, form.video, self.width, self.height,
                                            self._rate, crf, preset)
            self._audio = _AudioTrack(self._container, audio, form) if audio is not None else None
        except BaseException as exc:
            self._discard()
            _reraise_as_output_error(exc, self.path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame: (height, width, 3) uint8 RGB."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        pixels = _checked_frame(frame, self.height, self.width)
        picture = av.VideoFrame.from_ndarray(rgb_to_i420(pixels), format="yuv420p")
        picture.pts = self.frames_written
        picture.time_base = 1 / self._rate
        try:
            self._mux(self._video.encode(picture))
            self.frames_written += 1
            if self._audio is not None:
                self._mux(self._audio.encode_until(self.frames_written / self._rate))
        except OSError as exc:
            _reraise_as_output_error(exc, self.path)

    def close(self) -> None:
        """Flush the encoders, finish the file and move it onto ``path``."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"no frames were written; {self.path} was not created")
        try:
            if self._audio is not None:
                self._mux(self._audio.finish(self.frames_written / self._rate))
            self._mux(self._video.encode(None))
            self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException as exc:
            self._discard()
            _reraise_as_output_error(exc, self.path)
        self._closed = True

    def abort(self) -> None:
        """Stop without producing ``path``; the temporary file is deleted."""
        if not self._closed:
            self._discard()

    def _mux(self, packets: list[av.Packet]) -> None:
        self._container.mux(packets)

    def _discard(self) -> None:
        self._closed = True
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away anyway
                pass
        self._tmp.unlink(missing_ok=True)


def _check_video_params(width: int, height: int, fps: float, crf: int) -> None:
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(
            f"video size must be even and at least 2x2, got {width}x{height}; "
            f"crop the frames to even_size() = {even_size(width, height)}"
        )
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")


def temp_name(path: Path, pid: int, token: str) -> Path:
    """The hidden temporary file a process writes before it becomes ``path``:
    ``.NAME.tmp-PID-TOKEN.mp4`` beside it. The process id lets a later run recognise debris."""
    return path.with_name(f".{path.name}.tmp-{pid}-{token}.mp4")


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temporary files of ``path`` left by processes that no longer run (killed, crashed).

    Files of a live process (another run writing the same output) are kept. Returns the removed.
    """
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*.mp4"):
        pid = _temp_owner(tmp, path)
        if pid is not None and not _process_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _temp_owner(tmp: Path, path: Path) -> int | None:
    """The process id in a temporary file's name, or None if the name is not one of ours."""
    middle = tmp.name[len(f".{path.name}.tmp-"):-len(".mp4")]
    pid, _, token = middle.partition("-")
    return int(pid) if pid.isdigit() and token else None


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve_temp(path: Path) -> Path:
    """Create (exclusively) and return a hidden temporary file in ``path``'s folder, after
    removing the debris of earlier runs that were killed before they could clean up."""
    remove_stale_temps(path)
    for _ in range(100):
        tmp = temp_name(path, os.getpid(), secrets.token_hex(4))
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            _reraise_as_output_error(exc, path)
        return tmp
    raise OutputError(f"cannot create a temporary file beside {path}")


def _reraise_as_output_error(exc: BaseException, path: Path) -> NoReturn:
    """Raise the ``OutputError`` a user can act on for a failed write, else ``exc`` itself."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        message = f"the disk is full while writing {path}. Free some space and retry."
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        message = f"cannot write {path} ({exc}). Choose a folder you can write to."
    else:
        raise exc
    raise OutputError(message) from exc


_SAMPLE_FORMATS = {"aac": "fltp", "libopus": "flt"}
_MUXER_OPTIONS = {"mp4": {"movflags": "+faststart"}, "mov": {"movflags": "+faststart"}}


def _encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    if codec == "libvpx-vp9":  # one pass, real time at cpu-used 6: about as fast as x264 here
        quality = {"lossless": "1"} if crf == 0 else {"crf": str(min(63, crf + 8)), "b": "0"}
        return {**quality, "deadline": "realtime", "cpu-used": "6", "row-mt": "1"}
    return {"crf": str(crf), "preset": preset, "x264-params": X264_PARAMS}


def _add_video_stream(
    container: av.container.OutputContainer, codec: str, width: int, height: int,
    rate: Fraction, crf: int, preset: str,
) -> av.VideoStream:
    stream = container.add_stream(codec, rate=rate, options=_encoder_options(codec, crf, preset))
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    context = stream.codec_context
    context.time_base = 1 / rate
    context.thread_count = 2
    # BT.709 primaries and transfer (sRGB content); BT.601 matrix, limited range, as rgb_to_i420.
    context.color_primaries = context.color_trc = 1
    context.colorspace = 6
    context.color_range = 1
    return stream


def rgb_to_i420(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H·3/2, W) uint8 planar YUV 4:2:0, BT.601 matrix, limited range.

    OpenCV's conversion is over ten times faster than swscale's; the stream is tagged to match.
    """
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420)


def _checked_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 numpy arrays, got {getattr(frame, 'dtype', frame)}")
    if frame.shape != (height, width, 3):
        raise ValueError(f"frame shape {frame.shape} differs from the video's {(height, width, 3)}")
    return np.ascontiguousarray(frame)


class _AudioTrack:
    """A ``Waveform`` fed into an audio stream (48 kHz mono, ``form``'s encoder) in step with
    the video clock; only the samples of one step are read at a time (``Waveform.read``)."""

    def __init__(self, container: av.container.OutputContainer, waveform: Waveform,
                 form: VideoFormat) -> None:
        self._waveform = waveform
        self._source_rate = int(waveform.sample_rate)
        self._stream = container.add_stream(form.audio, rate=AUDIO_TRACK_RATE, layout="mono")
        self._stream.bit_rate = form.audio_bit_rate
        self._resampler = av.AudioResampler(
            format=_SAMPLE_FORMATS[form.audio], layout="mono", rate=AUDIO_TRACK_RATE,
            frame_size=form.audio_frame,
        )
        self._fed = 0  # source samples handed to the resampler so far
        self._pts = 0  # output samples encoded so far

    def encode_until(self, seconds: Fraction) -> list[av.Packet]:
        """Packets for the audio from where the last call stopped up to ``seconds``."""
        target = round(seconds * self._source_rate)
        if target <= self._fed:
            return []
        frame = av.AudioFrame.from_ndarray(self._slice(self._fed, target)[None, :],
                                           format="flt", layout="mono")
        frame.sample_rate = self._source_rate
        frame.pts = self._fed
        frame.time_base = Fraction(1, self._source_rate)
        self._fed = target
        return self._encode(self._resampler.resample(frame))

    def finish(self, seconds: Fraction) -> list[av.Packet]:
        """The last packets: audio up to ``seconds`` (padded with silence), then the flush."""
        packets = self.encode_until(seconds)
        packets += self._encode(self._resampler.resample(None))
        return packets + list(self._stream.encode(None))

    def _slice(self, start: int, stop: int) -> np.ndarray:
        """Source samples [start, stop), zeros past the end of the waveform."""
        chunk = np.zeros(stop - start, dtype=np.float32)
        available = self._waveform.read(start, stop)
        chunk[: available.size] = available
        return chunk

    def _encode(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        packets: list[av.Packet] = []
        for frame in frames:
            frame.pts = self._pts
            frame.time_base = Fraction(1, AUDIO_TRACK_RATE)
            self._pts += frame.samples
            packets.extend(self._stream.encode(frame))
        return packets


# --------------------------------------------------------------------------------------------
# reading video


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` measures. Sizes in pixels, rates in frames per second, times in s."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    has_audio: bool
    audio_duration_s: float
    video_codec: str
    pix_fmt: str


def probe_video(path: PathLike) -> VideoInfo:
    """Measure a video file; ``num_frames`` counts decoded frames exactly.

    ``duration_s`` is ``num_frames / fps``; ``audio_duration_s`` is the first audio track's
    duration (0.0 without audio). Raises ``ValueError`` if the file has no readable video.
    """
    with _open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        num_frames = sum(1 for _ in container.decode(stream))
        info = dict(
            width=stream.codec_context.width, height=stream.codec_context.height,
            video_codec=stream.codec_context.name, pix_fmt=stream.codec_context.pix_fmt,
        )
    audio_s = _audio_duration(path)
    return VideoInfo(
        fps=fps, num_frames=num_frames, duration_s=num_frames / fps if fps else 0.0,
        has_audio=audio_s is not None, audio_duration_s=audio_s or 0.0, **info,
    )


def _open_video(path: PathLike) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"it is not a video that ffmpeg reads ({_reason(exc)})") from exc
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} has no video stream")
    return container


def _audio_duration(path: PathLike) -> float | None:
    """Seconds of the first audio track; None without audio.

    Taken from the container's track duration (which excludes the AAC encoder's priming and
    end padding); counted from decoded samples where the container does not record it.
    """
    with av.open(str(path), mode="r") as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / float(stream.codec_context.sample_rate)


def iter_video_frames(path: PathLike) -> Iterator[np.ndarray]:
    """Yield each decoded frame of the first video stream as (H, W, 3) uint8 RGB."""
    with _open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
