"""The bad-input corpus: every kind of photo, recording and output path a user may hand over.

Each case builds its inputs in code, runs the real command line (``talkinghead.cli.main``)
in-process and checks the exit code (0 video, 2 the user's input, 3 a bug, 130 interrupted), the
message on stderr, that no traceback is printed, that a failed run leaves no output and no
temporary file, and that a successful one leaves a playable mp4 as long as the audio.

``python tests/test_bad_inputs.py --table`` runs the same cases and prints a markdown table.
"""
from __future__ import annotations

import contextlib
import io
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from scipy import signal as sps

from talkinghead.cli import main
from talkinghead.media import VideoWriter, probe_video
from talkinghead.types import Waveform

FPS = 25.0
SPEECH_S = 1.0
"""Seconds of synthetic speech used by the cases (short keeps the file fast)."""


# --------------------------------------------------------------------------------------------
# assets and the case runner


@dataclass
class Assets:
    """What every case starts from: the demo portrait (RGB array and path) and speech."""

    portrait: np.ndarray
    portrait_path: Path
    speech: Waveform
    folder: Path

    def speech_wav(self) -> Path:
        """The speech as a 16-bit wav file (written once)."""
        path = self.folder / "speech.wav"
        if not path.exists():
            write_wav(path, self.speech.samples, self.speech.sample_rate)
        return path


def make_assets(folder: Path) -> Assets:
    """Synthesize ``SPEECH_S`` seconds of speech and load the demo portrait."""
    from talkinghead.audio.tts import synthesize
    from talkinghead.samples import demo_portrait_path

    w = synthesize("Bob met a papa bear by the mall.").waveform
    speech = Waveform(w.samples[: int(SPEECH_S * w.sample_rate)].copy(), w.sample_rate)
    path = demo_portrait_path()
    folder.mkdir(parents=True, exist_ok=True)
    return Assets(np.asarray(Image.open(path).convert("RGB")), path, speech, folder)


@dataclass
class Ctx:
    """Per-case working folder, the shared assets, and cleanups (mounts) run after the case."""

    folder: Path
    assets: Assets
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def argv(self, image: Path | str | None = None, audio: Path | str | None = None,
             out: Path | str | None = None, *extra: str) -> list[str]:
        """``generate`` arguments; defaults: the portrait, the speech, ``out.mp4`` here."""
        return ["generate", "--image", str(image or self.assets.portrait_path),
                "--audio", str(audio or self.assets.speech_wav()),
                "-o", str(out or self.folder / "out.mp4"), "--size", "128", *extra]


@dataclass(frozen=True)
class Case:
    """One input and what must happen. ``make`` builds the inputs and returns the argv;
    ``code``: exit code; ``message``: regex that stderr must match; ``out``: the output path
    relative to the case folder (None: read from argv); ``patch``: (target, ``mock.patch``
    keywords) to simulate a failure inside or a smaller limit; ``seconds``: expected video length (None: the speech's)."""

    name: str
    what: str
    make: Callable[[Ctx], list[str]]
    code: int
    message: str = ""
    patch: tuple[str, dict] | None = None
    seconds: float | None = None


@dataclass
class Outcome:
    code: int
    stderr: str
    output: Path | None


def run_case(case: Case, folder: Path, assets: Assets) -> Outcome:
    """Build the case's inputs in ``folder`` and run the CLI on them, stderr captured."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(folder, assets)
    with ctx.stack:
        argv = case.make(ctx)
        err = io.StringIO()
        with contextlib.ExitStack() as patches, contextlib.redirect_stderr(err):
            if case.patch:
                patches.enter_context(mock.patch(case.patch[0], **case.patch[1]))
            caught = patches.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            code = main(argv)
        leaked = [w for w in caught if re.search(r"[/\\](PIL|talkinghead)[/\\]", w.filename)]
        assert not leaked, f"{case.name}: a warning would reach the terminal: {leaked[0].message}"
        output = _output_of(argv)
        check_outcome(case, code, err.getvalue(), output, assets)
    return Outcome(code, err.getvalue(), output)


def _output_of(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("-o") + 1]) if "-o" in argv else None


def temp_debris(output: Path) -> list[Path]:
    """Hidden temporary files of ``output`` left in its folder."""
    if not output.parent.is_dir():
        return []
    return sorted(output.parent.glob(f".{output.name}.tmp-*"))


def check_outcome(case: Case, code: int, stderr: str, output: Path | None, assets: Assets) -> None:
    """The checks every case shares (see the module docstring)."""
    assert code == case.code, f"{case.name}: exit {code}, stderr: {stderr}"
    assert "Traceback" not in stderr, stderr
    if case.message:
        assert re.search(case.message, stderr, re.S | re.I), f"{case.name}: {stderr!r}"
    if output is None:
        return
    assert not temp_debris(output), temp_debris(output)
    if code != 0:
        existed_before = case.name in ("out_equals_image", "out_equals_audio", "out_is_folder")
        assert existed_before or not output.exists(), f"{case.name}: partial output {output}"
        return
    info = probe_video(output)
    seconds = case.seconds if case.seconds is not None else assets.speech.duration
    assert abs(info.num_frames / FPS - seconds) <= 1.01 / FPS
    assert info.has_audio and info.video_codec == "h264"


# --------------------------------------------------------------------------------------------
# builders


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write (N,) or (N, C) float samples as a wav file."""
    sf.write(path, samples, rate, subtype=subtype)
    return path


def save(ctx: Ctx, name: str, pixels: np.ndarray | Image.Image, **options) -> Path:
    """Save an image (array or Pillow image) under the case folder."""
    im = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    path = ctx.folder / name
    im.save(path, **options)
    return path


def tiff_with_42_samples(folder: Path, pixels: np.ndarray) -> Path:
    """A TIFF whose header claims 42 samples per pixel (Pillow logs an error, then refuses it)."""
    path = folder / "odd.tif"
    Image.fromarray(pixels[:32, :32]).save(path)
    data = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", data[4:8])[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", data[ifd:ifd + 2])[0], 12):
        if struct.unpack("<H", data[entry:entry + 2])[0] == 277:  # SamplesPerPixel
            data[entry + 8:entry + 10] = struct.pack("<H", 42)
    path.write_bytes(bytes(data))
    return path


def truncated(ctx: Ctx, fmt: str) -> Path:
    whole = save(ctx, f"whole.{fmt}", ctx.assets.portrait)
    cut = ctx.folder / f"cut.{fmt}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut


def two_faces(ctx: Ctx) -> Path:
    """The portrait twice, at full and at 60 % size, on a grey canvas."""
    big = Image.fromarray(ctx.assets.portrait)
    small = big.resize((big.width * 3 // 5, big.height * 3 // 5), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (big.width + small.width + 60, big.height + 40), (128, 128, 128))
    canvas.paste(big, (20, 20))
    canvas.paste(small, (big.width + 40, 120))
    return save(ctx, "two.png", canvas)


def tiny_face(ctx: Ctx, scale: float = 0.1) -> Path:
    """The portrait shrunk so that the face is about 25 px wide, on a 400 px canvas."""
    im = Image.fromarray(ctx.assets.portrait)
    small = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (400, 400), (128, 128, 128))
    canvas.paste(small, (170, 160))
    return save(ctx, "tiny.png", canvas)


def half_face(ctx: Ctx) -> Path:
    """Stand-in for a profile: only one side of the face (cut at the nose) is visible."""
    p = ctx.assets.portrait
    side = np.full_like(p, 128)
    side[:, : p.shape[1] // 2] = p[:, : p.shape[1] // 2]
    return save(ctx, "profile.png", side)


def cartoon_face(ctx: Ctx) -> Path:
    """A face painted with OpenCV primitives: oval, eyes, brows, nose, mouth."""
    import cv2

    img = np.full((512, 512, 3), (200, 220, 235), np.uint8)
    cv2.ellipse(img, (256, 270), (150, 190), 0, 0, 360, (180, 200, 240), -1)
    for x in (196, 316):
        cv2.ellipse(img, (x, 230), (34, 20), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (x, 230), 12, (60, 40, 30), -1)
        cv2.line(img, (x - 36, 190), (x + 36, 186), (40, 30, 30), 8)
    cv2.line(img, (256, 250), (246, 320), (120, 120, 170), 5)
    cv2.ellipse(img, (256, 370), (60, 22), 0, 0, 180, (70, 60, 200), -1)
    return save(ctx, "cartoon.png", img[:, :, ::-1])


def exif_rotated(ctx: Ctx) -> Path:
    """The portrait stored turned 90° counter-clockwise, with EXIF orientation 6 to undo it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(ctx, "rotated.jpg", np.ascontiguousarray(np.rot90(ctx.assets.portrait, 1)),
                exif=exif, quality=92)


def sixteen_bit(ctx: Ctx) -> Path:
    gray = np.asarray(Image.fromarray(ctx.assets.portrait).convert("L"), dtype=np.uint16) * 257
    return save(ctx, "gray16.png", Image.fromarray(gray))


def with_alpha(ctx: Ctx) -> Path:
    rgba = np.dstack([ctx.assets.portrait, np.full(ctx.assets.portrait.shape[:2], 255, np.uint8)])
    rgba[:40, :, 3] = 0
    return save(ctx, "alpha.png", rgba)


def png_header_only(ctx: Ctx, side: int) -> Path:
    """A tiny PNG whose header claims side × side pixels: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path = ctx.folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def speech_at(ctx: Ctx, rate: int, channels: int = 1, name: str | None = None) -> Path:
    """The speech resampled to ``rate`` Hz, copied into ``channels`` channels."""
    w = ctx.assets.speech
    g = np.gcd(rate, w.sample_rate)
    x = sps.resample_poly(w.samples, rate // g, w.sample_rate // g).astype(np.float32)
    x = x[: int(round(w.duration * rate))]
    data = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    return write_wav(ctx.folder / (name or f"speech_{rate}_{channels}.wav"), data, rate)


def speech_changed(ctx: Ctx, name: str, fn: Callable[[np.ndarray], np.ndarray],
                   subtype: str = "PCM_16") -> Path:
    w = ctx.assets.speech
    return write_wav(ctx.folder / name, fn(w.samples.copy()), w.sample_rate, subtype)


def header_only_wav(ctx: Ctx) -> Path:
    path = ctx.folder / "empty.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
    return path


def video_file(ctx: Ctx, with_audio: bool) -> Path:
    """A small mp4 (grey frames) lasting as long as the speech, with or without its sound."""
    path = ctx.folder / ("talk.mp4" if with_audio else "mute.mp4")
    frames = int(round(ctx.assets.speech.duration * FPS))
    with VideoWriter(path, 64, 48, FPS, ctx.assets.speech if with_audio else None) as writer:
        for _ in range(frames):
            writer.write(np.full((48, 64, 3), 90, np.uint8))
    return path


def portrait_video(ctx: Ctx) -> Path:
    """A short mp4 whose first frame is the portrait and the rest grey (no face)."""
    path = ctx.folder / "source.mp4"
    h, w = ctx.assets.portrait.shape[:2]
    with VideoWriter(path, w, h, FPS, None) as writer:
        writer.write(ctx.assets.portrait)
        for _ in range(4):
            writer.write(np.full((h, w, 3), 90, np.uint8))
    return path


def mounted_tmpfs(ctx: Ctx, name: str, options: str) -> Path:
    """A fresh tmpfs at ``ctx.folder / name`` (unmounted after the case); skip where mount fails."""
    point = ctx.folder / name
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    ctx.stack.callback(subprocess.run, ["umount", "-l", str(point)], check=False)
    return point


def stale_temp(ctx: Ctx) -> list[str]:
    """Debris of a killed run (a process id that no longer exists) beside the output."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (ctx.folder / f".out.mp4.tmp-{dead.pid}-deadbeef.mp4").write_bytes(b"\0" * 1000)
    return ctx.argv()


# --------------------------------------------------------------------------------------------
# the corpus

CASES: list[Case] = [
    # images
    Case("img_zero_bytes", "empty image file",
         lambda c: c.argv(image=_bytes(c, "empty.jpg", b"")), 2, r"image file is empty"),
    Case("img_truncated_png", "PNG cut in half",
         lambda c: c.argv(image=truncated(c, "png")), 2, r"truncated or corrupt"),
    Case("img_truncated_jpeg", "JPEG cut in half",
         lambda c: c.argv(image=truncated(c, "jpeg")), 2, r"truncated or corrupt"),
    Case("img_tiff_42_samples", "a TIFF claiming 42 samples per pixel: only our message",
         lambda c: c.argv(image=tiff_with_42_samples(c.folder, c.assets.portrait)), 2,
         r"^talkinghead: error: \S*odd\.tif is not an image that can be read"),
    Case("img_not_an_image", "a text file named .png",
         lambda c: c.argv(image=_bytes(c, "notes.png", b"shopping list\n")), 2, r"not an image"),
    Case("img_video", "a video as the image: its first frame is the portrait (as SadTalker)",
         lambda c: c.argv(image=portrait_video(c)), 0),
    Case("img_audio_file", "a wav file as the image",
         lambda c: c.argv(image=c.assets.speech_wav()), 2, r"not an image"),
    Case("img_missing", "image path that does not exist",
         lambda c: c.argv(image=c.folder / "nope.jpg"), 2, r"image file not found"),
    Case("img_is_folder", "a folder as the image",
         lambda c: c.argv(image=c.folder), 2, r"is a folder"),
    Case("img_no_face", "a photo of a grey wall",
         lambda c: c.argv(image=save(c, "wall.png", _noise((300, 300, 3), 100, 140))), 2,
         r"no face found"),
    Case("img_one_pixel", "a 1×1 image",
         lambda c: c.argv(image=save(c, "dot.png", np.zeros((1, 1, 3), np.uint8))), 2,
         r"no face found"),
    Case("img_two_faces", "two people: the largest is used, stderr says so",
         lambda c: c.argv(two_faces(c)), 0, r"found 2 faces; animating face 0"),
    Case("img_face_index_1", "two people, --face-index 1",
         lambda c: c.argv(two_faces(c), None, None, "--face-index", "1"), 0),
    Case("img_face_index_too_big", "two people, --face-index 5",
         lambda c: c.argv(two_faces(c), None, None, "--face-index", "5"), 2,
         r"^talkinghead: error: --face-index 5 .* only 2 face.*choose 0\.\.1"),
    Case("img_tiny_face", "face about 25 px wide (refused: under 48 px)",
         lambda c: c.argv(tiny_face(c)), 2, r"face is only \d+ px wide.*at least 48 px"),
    Case("img_small_face", "face about 60 px wide",
         lambda c: c.argv(tiny_face(c, 0.25)), 0),
    Case("img_half_face", "half a face, the other half grey (profile stand-in)",
         lambda c: c.argv(half_face(c)), 0),
    Case("img_cartoon", "a face painted with OpenCV (MediaPipe accepts it)",
         lambda c: c.argv(cartoon_face(c)), 0),
    Case("img_bomb", "PNG header claiming 20000×20000 pixels",
         lambda c: c.argv(png_header_only(c, 20_000)), 2, r"too large \(400,000,000 pixels.*Downscale"),
    Case("img_bomb_ours", "PNG header claiming 13000×13000 pixels (over our 150 Mpx limit)",
         lambda c: c.argv(png_header_only(c, 13_000)), 2, r"too large \(13000x13000.*Downscale"),
    Case("img_cmyk", "CMYK JPEG",
         lambda c: c.argv(save(c, "cmyk.jpg", Image.fromarray(c.assets.portrait).convert("CMYK")))
         , 0),
    Case("img_16bit", "16-bit grayscale PNG", lambda c: c.argv(sixteen_bit(c)), 0),
    Case("img_palette", "palette PNG (256 colours)",
         lambda c: c.argv(save(c, "pal.png", Image.fromarray(c.assets.portrait).quantize(256))), 0),
    Case("img_alpha", "RGBA PNG with a transparent band", lambda c: c.argv(with_alpha(c)), 0),
    Case("img_grayscale", "8-bit grayscale JPEG",
         lambda c: c.argv(save(c, "gray.jpg", Image.fromarray(c.assets.portrait).convert("L"))), 0),
    Case("img_exif_rotated", "JPEG stored sideways, EXIF orientation 6",
         lambda c: c.argv(exif_rotated(c)), 0),
    Case("img_webp", "WebP", lambda c: c.argv(save(c, "p.webp", c.assets.portrait)), 0),
    # audio
    Case("aud_zero_bytes", "empty audio file",
         lambda c: c.argv(audio=_bytes(c, "empty.wav", b"")), 2, r"audio file is empty"),
    Case("aud_no_samples", "wav header with 0 samples",
         lambda c: c.argv(audio=header_only_wav(c)), 2, r"(no audio samples|cannot decode)"),
    Case("aud_corrupt_header", "RIFF header followed by garbage",
         lambda c: c.argv(audio=_bytes(c, "bad.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "
                                       + bytes(range(200)))), 2, r"cannot decode the audio"),
    Case("aud_text_as_mp3", "a text file named .mp3",
         lambda c: c.argv(audio=_bytes(c, "talk.mp3", b"hello\n" * 50)), 2,
         r"cannot decode the audio"),
    Case("aud_missing", "audio path that does not exist",
         lambda c: c.argv(audio=c.folder / "nope.wav"), 2, r"audio file not found"),
    Case("aud_silence", "2 s of digital silence: a resting face for 2 s",
         lambda c: c.argv(audio=write_wav(c.folder / "quiet.wav", np.zeros(32000), 16000)), 0,
         seconds=2.0),
    Case("aud_video_track", "an mp4 video: its audio track is used",
         lambda c: c.argv(audio=video_file(c, True)), 0),
    Case("aud_video_mute", "an mp4 video without sound",
         lambda c: c.argv(audio=video_file(c, False)), 2, r"has no audio track"),
    Case("aud_wrong_extension", "a wav file named .mp3",
         lambda c: c.argv(audio=_renamed(c.assets.speech_wav(), c.folder / "speech.mp3")), 0),
    Case("aud_8k", "8 kHz telephone-rate wav", lambda c: c.argv(audio=speech_at(c, 8000)), 0),
    Case("aud_96k", "96 kHz wav", lambda c: c.argv(audio=speech_at(c, 96000)), 0),
    Case("aud_6ch", "6-channel (5.1) wav", lambda c: c.argv(audio=speech_at(c, 48000, 6)), 0),
    Case("aud_clipping", "speech amplified 10× and hard-clipped",
         lambda c: c.argv(audio=speech_changed(c, "loud.wav", lambda x: np.clip(10 * x, -1, 1))),
         0),
    Case("aud_dc_offset", "speech at half level on a +0.4 DC offset",
         lambda c: c.argv(audio=speech_changed(c, "dc.wav", lambda x: 0.5 * x + 0.4)), 0),
    Case("aud_nan", "float wav holding NaN and infinite samples",
         lambda c: c.argv(audio=speech_changed(c, "nan.wav", _with_nan, "FLOAT")), 0),
    Case("aud_very_short", "20 ms of audio: one frame",
         lambda c: c.argv(audio=write_wav(c.folder / "blip.wav", np.zeros(320), 16000)), 0,
         seconds=0.04),
    Case("aud_short_noise", "12 ms of noise: too short for the phone decoder, one frame",
         lambda c: c.argv(audio=write_wav(c.folder / "click.wav",
                                          np.random.default_rng(0).normal(0, 0.1, 200), 16000)), 0,
         seconds=0.04),
    # reference videos
    Case("ref_pose_missing", "--ref-pose naming no file",
         lambda c: c.argv(None, None, None, "--ref-pose", str(c.folder / "nothing.mp4")), 2,
         r"no reference video file at \S*nothing\.mp4"),
    Case("ref_blink_not_a_video", "--ref-blink naming a text file",
         lambda c: c.argv(None, None, None, "--ref-blink", str(_bytes(c, "notes.mp4", b"hello\n"))),
         2, r"cannot read the reference video \S*notes\.mp4: it is not a video that ffmpeg reads"),
    # output paths
    Case("out_folder_missing", "output in a folder that does not exist",
         lambda c: c.argv(out=c.folder / "no" / "such" / "out.mp4"), 2,
         r"output folder does not exist"),
    Case("out_is_folder", "output path is a folder",
         lambda c: c.argv(out=c.folder), 2, r"is a folder"),
    Case("out_equals_image", "output path is the input photo",
         lambda c: c.argv(image=_copy(c.assets.portrait_path, c.folder / "p.jpg"),
                          out=c.folder / "p.jpg"), 2, r"would destroy the input"),
    Case("out_equals_audio", "output path is the input audio",
         lambda c: c.argv(audio=c.assets.speech_wav(), out=c.assets.speech_wav()), 2,
         r"would destroy the input"),
    Case("out_read_only", "output folder on a read-only filesystem",
         lambda c: c.argv(out=mounted_tmpfs(c, "ro", "ro,size=64k") / "out.mp4"), 2,
         r"on a read-only file system"),
    Case("out_disk_full", "output on a 16 KiB filesystem (disk full)",
         lambda c: c.argv(out=mounted_tmpfs(c, "small", "size=16k") / "out.mp4"), 2,
         r"disk is full"),
    Case("out_unknown_format", "output with an extension no video format has (.png)",
         lambda c: c.argv(out=c.folder / "out.png"), 2, r"cannot write out\.png.*\.webm"),
    Case("out_overwrite", "output exists already: replaced",
         lambda c: c.argv(None, None, _bytes(c, "out.mp4", b"old")), 0),
    Case("out_stale_temp", "debris of a killed run beside the output: removed", stale_temp, 0),
    # options
    Case("opt_fps_zero", "--fps 0", lambda c: c.argv(None, None, None, "--fps", "0"), 2,
         r"fps must be within"),
    Case("opt_seed_negative", "--seed -5", lambda c: c.argv(None, None, None, "--seed", "-5"), 2,
         r"seed must be a whole number 0 or more"),
    Case("opt_crf_too_high", "--crf 60", lambda c: c.argv(None, None, None, "--crf", "60"), 2,
         r"crf must be within 0\.\.51"),
    Case("opt_size_negative", "--size -5", lambda c: c.argv(None, None, None, "--size", "-5"), 2,
         r"--size: must be within"),
    Case("opt_face_index_negative", "--face-index -1",
         lambda c: c.argv(None, None, None, "--face-index", "-1"), 2, r"--face-index: must be"),
    Case("opt_pose_style", "--pose-style 99",
         lambda c: c.argv(None, None, None, "--pose-style", "99"), 2, r"pose style must be"),
    Case("opt_yaw_nan", "--yaw 10 nan", lambda c: c.argv(None, None, None, "--yaw", "10", "nan"),
         2, r"--yaw angles must lie within"),
    Case("opt_scale_nan", "--expression-scale nan",
         lambda c: c.argv(None, None, None, "--expression-scale", "nan"), 2,
         r"scales must be within 0\.\.3, got nan"),
    Case("opt_scale_huge", "--head-motion-scale 1e6 (the face would tear)",
         lambda c: c.argv(None, None, None, "--head-motion-scale", "1e6"), 2,
         r"scales must be within 0\.\.3, got 1 and 1e\+06"),
    Case("opt_text_file_missing", "--text naming a .txt file that does not exist",
         lambda c: ["generate", "--image", str(c.assets.portrait_path), "--text",
                    str(c.folder / "script.txt"), "-o", str(c.folder / "out.mp4")], 2,
         r"text file not found"),
    Case("opt_unknown", "an unknown flag", lambda c: c.argv(None, None, None, "--colour"), 2,
         r"unrecognized arguments"),
    Case("opt_no_image", "no --image", lambda c: ["generate", "-o", str(c.folder / "o.mp4")], 2,
         r"required: --image"),
    # failures inside
    Case("bug_inside", "an unexpected exception (a bug) inside the pipeline",
         lambda c: c.argv(), 3, r"internal error: RuntimeError: boom.*report it",
         patch=("talkinghead.stream.find_upright_face", {"side_effect": RuntimeError("boom")})),
    Case("ctrl_c_while_rendering", "Ctrl-C while frames are being written",
         lambda c: c.argv(), 130, r"interrupted; no output written",
         patch=("talkinghead.media.VideoWriter.write", {"side_effect": KeyboardInterrupt()})),
    # regressions found by benchmarks/fuzz_loaders.py
    Case("fuzz_tiff_bad_tag", "TIFF whose width tag points past the end of the file",
         lambda c: c.argv(tiff_with_bad_tag(c, 0)), 2, r"not an image that can be read"),
    Case("fuzz_tiff_bad_strip_tag", "TIFF whose strip-size tag points past the end (no warning)",
         lambda c: c.argv(tiff_with_bad_tag(c, 8)), 2, r"no face found"),
    Case("fuzz_wav_absurd_rate", "wav header claiming 2,026,239,360 Hz (was: 5 s, then 'empty')",
         lambda c: c.argv(audio=patched_wav(c, 24, struct.pack("<I", 2_026_239_360))), 2,
         r"claims a sample rate of 2,026,239,360 Hz"),
    Case("fuzz_wav_unknown_codec", "wav with an unknown codec tag (was: AttributeError)",
         lambda c: c.argv(audio=patched_wav(c, 20, struct.pack("<H", 0x1234))), 2,
         r"codec ffmpeg cannot decode"),
    Case("aud_too_long", "audio over the length limit (limit lowered to 0.5 s here)",
         lambda c: c.argv(), 2, r"longer than 0.5 s, the most one video may last; split it",
         patch=("talkinghead.media.MAX_AUDIO_SECONDS", {"new": 0.5})),
]


def tiff_with_bad_tag(ctx: Ctx, entry: int) -> Path:
    """A black 32×24 TIFF whose ``entry``-th IFD tag claims 65536 values (past the file end)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(buf, format="TIFF")
    data = bytearray(buf.getvalue())
    offset = 10 + 12 * entry + 4  # IFD at 8: count (2 bytes), then 12-byte entries; count at +4
    data[offset:offset + 4] = struct.pack("<I", 0x10000)
    return _bytes(ctx, "bad.tif", bytes(data))


def patched_wav(ctx: Ctx, offset: int, value: bytes) -> Path:
    """The speech as a float wav with ``value`` written at byte ``offset`` of its header."""
    path = speech_changed(ctx, "patched.wav", lambda x: x, "FLOAT")
    data = bytearray(path.read_bytes())
    data[offset:offset + len(value)] = value
    path.write_bytes(bytes(data))
    return path


def _bytes(ctx: Ctx, name: str, data: bytes) -> Path:
    path = ctx.folder / name
    path.write_bytes(data)
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _renamed(src: Path, dst: Path) -> Path:
    return _copy(src, dst)


def _noise(shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    return np.random.default_rng(0).integers(lo, hi, shape).astype(np.uint8)


def _with_nan(x: np.ndarray) -> np.ndarray:
    x[100:200] = np.nan
    x[300] = np.inf
    x[400] = -np.inf
    return x


# --------------------------------------------------------------------------------------------
# tests


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    return make_assets(tmp_path_factory.mktemp("assets"))


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, assets: Assets, tmp_path: Path) -> None:
    run_case(case, tmp_path, assets)


def test_bomb_is_refused_fast(assets: Assets, tmp_path: Path) -> None:
    started = time.perf_counter()
    run_case(next(c for c in CASES if c.name == "img_bomb"), tmp_path, assets)
    assert time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------------------------
# in a separate process: memory, Ctrl-C, kill


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


_HWM = ("def peak_mb():\n"
        "    # VmHWM: this process's own peak RSS (ru_maxrss can inherit the parent's across exec)\n"
        "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "    return int(line.split()[1]) // 1024\n")
_PEAK_RSS = _HWM + ("import sys\nfrom talkinghead.cli import main\nrc = main(sys.argv[1:])\n"
                    "print(rc, peak_mb())\n")


def test_ten_thousand_pixel_photo_makes_a_video_in_bounded_memory(assets: Assets,
                                                                  tmp_path: Path) -> None:
    """A 10,000 × 10,000 JPEG (the face 2,000 px wide) is downscaled while it is decoded."""
    canvas = Image.new("RGB", (10_000, 10_000), (120, 130, 140))
    face = Image.fromarray(assets.portrait)
    canvas.paste(face.resize((face.width * 4, face.height * 4)), (4000, 3500))
    image = tmp_path / "huge.jpg"
    canvas.save(image, quality=85)
    del canvas
    out = tmp_path / "huge.mp4"
    done = _python(_PEAK_RSS, *Ctx(tmp_path, assets).argv(image, None, out, "--quiet"))
    assert done.returncode == 0, done.stderr
    code, peak_mb = (int(v) for v in done.stdout.split()[-2:])
    assert code == 0, done.stderr
    assert peak_mb < 650, f"peak RSS {peak_mb} MB"  # 1,116 MB before it was downscaled on load
    assert probe_video(out).num_frames == round(assets.speech.duration * FPS)


def test_ten_thousand_pixel_png_loads_in_bounded_memory(tmp_path: Path) -> None:
    Image.new("L", (10_000, 10_000), 200).save(tmp_path / "big.png", compress_level=1)
    code = _HWM + ("import sys\nfrom talkinghead.media import load_image\n"
                   "p = load_image(sys.argv[1]).pixels\nprint(*p.shape, peak_mb())\n")
    done = _python(code, str(tmp_path / "big.png"))
    assert done.returncode == 0, done.stderr
    h, w, _, peak_mb = (int(v) for v in done.stdout.split()[-4:])
    assert (h, w) == (4096, 4096), done.stderr
    assert peak_mb < 600, f"peak RSS {peak_mb} MB"


def _long_speech(assets: Assets, path: Path, seconds: float) -> Path:
    reps = int(np.ceil(seconds / assets.speech.duration))
    return write_wav(path, np.tile(assets.speech.samples, reps), assets.speech.sample_rate)


def _start_render(assets: Assets, tmp_path: Path, seconds: float) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m talkinghead generate`` on ``seconds`` of speech; wait until it writes."""
    audio = _long_speech(assets, tmp_path / "long.wav", seconds)
    out = tmp_path / "out.mp4"
    argv = Ctx(tmp_path, assets).argv(None, audio, out, "--quiet", "--size", "512")
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not temp_debris(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert temp_debris(out), f"the render never started: {proc.communicate()}"
    time.sleep(0.5)
    assert proc.poll() is None, "the render finished before it could be interrupted"
    return proc, out


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_mid_render_leaves_nothing(assets: Assets, tmp_path: Path, sig, code) -> None:
    proc, out = _start_render(assets, tmp_path, 16.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "no output written" in err and "Traceback" not in err
    assert not out.exists() and not temp_debris(out)


def test_killed_run_leaves_debris_that_the_next_run_removes(assets: Assets,
                                                           tmp_path: Path) -> None:
    proc, out = _start_render(assets, tmp_path, 16.0)
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists() and len(temp_debris(out)) == 1  # SIGKILL cannot be cleaned up
    case = Case("rerun", "rerun after kill", lambda c: c.argv(), 0)
    run_case(case, tmp_path, assets)
    assert out.exists() and not temp_debris(out)


# --------------------------------------------------------------------------------------------
# the table


def print_table(cases: list[Case]) -> None:
    """Run every case and print | case | input | outcome | message | as markdown."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        assets = make_assets(Path(tmp) / "assets")
        print("| case | input | exit | outcome | message (first line of stderr) |")
        print("|---|---|---|---|---|")
        for i, case in enumerate(cases):
            print(_table_row(case, Path(tmp) / f"case{i}", assets), flush=True)


def _table_row(case: Case, folder: Path, assets: Assets) -> str:
    try:
        outcome = run_case(case, folder, assets)
    except pytest.skip.Exception as exc:
        return f"| {case.name} | {case.what} | – | skipped | {exc} |"
    except AssertionError as exc:
        return f"| {case.name} | {case.what} | ? | **FAILED** | {str(exc).splitlines()[0]} |"
    if outcome.code == 0:
        info = probe_video(outcome.output)
        result = f"video {info.width}×{info.height}, {info.num_frames / FPS:.2f} s"
    else:
        result = "error"
    lines = [ln.strip() for ln in outcome.stderr.splitlines()]
    message = next((ln for ln in lines if ln.startswith("talkinghead") and " error" in ln),
                   next((ln for ln in lines if ln.startswith("talkinghead:")), ""))
    return f"| {case.name} | {case.what} | {outcome.code} | {result} | {message.strip()[:160]} |"


if __name__ == "__main__":
    if "--table" in sys.argv:
        print_table(CASES)
    else:
        sys.exit(pytest.main([__file__, "-q"]))


def test_only_our_message_reaches_the_user_when_a_library_logs_its_own(tmp_path, portrait_path):
    """Pillow logs an error about a TIFF claiming 42 samples per pixel before refusing it, and
    with no logging set up Python printed that line above ours; the command line prints only
    its own message."""
    from talkinghead.media import load_image

    image = tiff_with_42_samples(tmp_path, load_image(portrait_path).pixels)
    done = subprocess.run([sys.executable, "-m", "talkinghead", "generate", "--image", str(image),
                           "--text", "Hi.", "-o", str(tmp_path / "out.mp4")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("talkinghead: error:") and "samples per pixel" not in done.stderr
