"""Tests of talkinghead.media: images, audio, video writing and probing. Fixtures are made here."""
from __future__ import annotations

import errno
import os
import struct
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from talkinghead import media
from talkinghead.errors import AudioError, ImageError, OutputError
from talkinghead.media import (
    VideoWriter,
    check_output_path,
    even_size,
    iter_video_frames,
    load_audio,
    load_image,
    probe_video,
)
from talkinghead.types import Waveform

# --------------------------------------------------------------------------------------------
# helpers


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """(N,) float32 sine wave."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin, in Hz."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def encode_audio(path: Path, container: str, codec: str, samples: np.ndarray, rate: int) -> None:
    """Write mono ``samples`` with PyAV as ``codec`` in a ``container`` file."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.codec_context.open()
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name, layout="mono", rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        source = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        source.sample_rate = rate
        pts = 0
        for frame in resampler.resample(source) + resampler.resample(None):
            frame.pts = pts
            pts += frame.samples
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def write_video(path: Path, frames: int, fps: float = 25.0, audio: Waveform | None = None,
                size: tuple[int, int] = (64, 48)) -> None:
    width, height = size
    with VideoWriter(path, width, height, fps=fps, audio=audio) as writer:
        for i in range(frames):
            writer.write(np.full((height, width, 3), (i * 7) % 256, dtype=np.uint8))


def png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height 8-bit gray pixels; the data is bogus."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


# --------------------------------------------------------------------------------------------
# images


def test_rgb_png_pixels_exact(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    portrait = load_image(tmp_path / "a.png")
    assert portrait.pixels.dtype == np.uint8 and portrait.pixels.flags.c_contiguous
    assert (portrait.height, portrait.width) == (30, 40)
    np.testing.assert_array_equal(portrait.pixels, pixels)


def test_gray_and_bilevel(tmp_path: Path) -> None:
    Image.new("L", (5, 4), 77).save(tmp_path / "l.png")
    assert load_image(tmp_path / "l.png").pixels.tolist() == [[[77] * 3] * 5] * 4
    bits = Image.new("1", (4, 2), 0)
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "b.png")
    out = load_image(tmp_path / "b.png").pixels
    assert out.shape == (2, 4, 3)
    assert out[0, 1].tolist() == [255, 255, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_palette_without_and_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (3, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putdata([0, 1, 0])
    pal.save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").pixels[0].tolist() == [[10, 20, 30], [200, 100, 50],
                                                                  [10, 20, 30]]
    pal.save(tmp_path / "pt.png", transparency=0)
    assert load_image(tmp_path / "pt.png").pixels[0].tolist() == [[255, 255, 255], [200, 100, 50],
                                                                   [255, 255, 255]]


def test_rgba_and_la_composited_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png").pixels[0].astype(int)
    assert out[0].tolist() == [255, 0, 0]
    assert out[1].tolist() == [255, 255, 255]
    np.testing.assert_allclose(out[2], [127, 127, 255], atol=1)
    la = np.array([[[0, 255], [0, 0]]], dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").pixels[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def test_16_bit_gray_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png").pixels
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (out[..., 0] == out[..., 2]).all()


def test_32_bit_integer_gray_treated_as_16_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 65535, 70000, -5]], dtype=np.int32)
    Image.fromarray(values, "I").save(tmp_path / "i.tif")
    assert load_image(tmp_path / "i.tif").pixels[0, :, 1].tolist() == [0, 1, 255, 255, 0]


def test_cmyk_tiff(tmp_path: Path) -> None:
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    assert load_image(tmp_path / "c.tif").pixels[1, 1].tolist() == [255, 0, 0]


def test_ycbcr_mode_converts() -> None:
    im = Image.new("YCbCr", (2, 2), (76, 85, 255))
    out = media._to_rgb(im)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out[0, 0], [254, 0, 0], atol=3)


@pytest.mark.parametrize("orientation, red_at, blue_at", [
    (6, (2, 10), (35, 10)),   # rotated 90 deg: the left strip becomes the top strip
    (3, (10, 35), (10, 2)),   # rotated 180 deg: the left strip becomes the right strip
])
def test_exif_orientation_applied(tmp_path: Path, orientation: int, red_at, blue_at) -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[:, :10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "o.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "o.jpg").pixels.astype(int)
    assert out.shape == ((40, 20, 3) if orientation == 6 else (20, 40, 3))
    np.testing.assert_allclose(out[red_at], [255, 0, 0], atol=20)
    np.testing.assert_allclose(out[blue_at], [0, 0, 255], atol=20)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_rejected(tmp_path: Path, fmt: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = tmp_path / "whole.img"
    Image.fromarray(noise).save(whole, format=fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(cut)


def test_libtiff_messages_do_not_reach_stderr(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """libtiff prints decoding errors of compressed TIFFs to fd 2 ("ZIPDecode: Decoding error
    ... incorrect data check"); a user must see only our ImageError."""
    path = tmp_path / "bad_checksum.tif"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path, compression="tiff_deflate")
    with Image.open(path) as im:
        offset, count = im.tag_v2[273][0], im.tag_v2[279][0]  # the one strip of deflate data
    data = bytearray(path.read_bytes())
    data[offset + count - 1] ^= 0xFF  # breaks the zlib (adler32) check at the strip's end
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)
    assert capfd.readouterr().err == ""


def test_bad_image_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("this is not a picture\n")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


@pytest.mark.parametrize("side", [13_000, 20_000])  # above our limit; above Pillow's own too
def test_decompression_bomb_refused_before_decoding(tmp_path: Path, side: int) -> None:
    png_header_only(tmp_path / "bomb.png", side, side)
    started = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "bomb.png")
    assert time.perf_counter() - started < 1.0


def test_ten_thousand_square_image_loads_downscaled(tmp_path: Path) -> None:
    Image.new("L", (10_000, 10_000), 200).save(tmp_path / "big.png", compress_level=1)
    pixels = load_image(tmp_path / "big.png").pixels
    assert pixels.shape == (media.MAX_IMAGE_SIDE, media.MAX_IMAGE_SIDE, 3)
    assert pixels[-1, -1].tolist() == [200, 200, 200]


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("P", "PNG"), ("I;16", "PNG"),
                                       ("RGBA", "PNG"), ("1", "PNG")])
def test_large_images_are_downscaled_keeping_aspect_and_content(tmp_path: Path, mode: str,
                                                                fmt: str) -> None:
    """Long side capped, aspect kept, left half dark and right half light in every mode."""
    gray = np.zeros((300, 500), np.uint8)
    gray[:, 250:] = 255
    im = Image.fromarray(gray).convert(mode) if mode != "I;16" else \
        Image.fromarray(gray.astype(np.uint16) * 257)
    im.save(tmp_path / "wide.img", format=fmt)
    pixels = load_image(tmp_path / "wide.img", max_side=100).pixels
    assert pixels.shape == (60, 100, 3)
    assert pixels[:, :45].max() < 40 and pixels[:, 55:].min() > 215


def test_large_exif_rotated_jpeg_is_downscaled_upright(tmp_path: Path) -> None:
    stored = np.zeros((200, 400, 3), np.uint8)
    stored[:, :200] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: the red left half ends up on top
    Image.fromarray(stored).save(tmp_path / "r.jpg", exif=exif, quality=95)
    pixels = load_image(tmp_path / "r.jpg", max_side=100).pixels
    assert pixels.shape == (100, 50, 3)
    np.testing.assert_allclose(pixels[10, 25], [255, 0, 0], atol=30)
    np.testing.assert_allclose(pixels[90, 25], [0, 0, 0], atol=30)


# --------------------------------------------------------------------------------------------
# audio


def test_stereo_44k_to_mono_16k(tmp_path: Path) -> None:
    tone = sine(440, 1.5, 44100)
    sf.write(tmp_path / "s.wav", np.stack([tone, tone], axis=1), 44100)
    wave = load_audio(tmp_path / "s.wav")
    assert wave.sample_rate == 16000 and wave.samples.dtype == np.float32
    assert abs(wave.samples.size - 24000) <= 16
    assert abs(peak_hz(wave.samples, 16000) - 440) < 3
    # identical channels are averaged, not summed
    assert 0.45 < np.abs(wave.samples[1000:-1000]).max() < 0.55


def test_one_sided_stereo_keeps_the_signal(tmp_path: Path) -> None:
    tone = sine(300, 1.0, 22050)
    sf.write(tmp_path / "left.wav", np.stack([tone, np.zeros_like(tone)], axis=1), 22050)
    wave = load_audio(tmp_path / "left.wav", sample_rate=8000)
    assert abs(peak_hz(wave.samples, 8000) - 300) < 3
    assert np.abs(wave.samples).max() > 0.2


@pytest.mark.parametrize("name, container, codec, rate", [
    ("a.mp3", "mp3", "libmp3lame", 44100),
    ("a.ogg", "ogg", "libopus", 48000),
    ("a.flac", "flac", "flac", 22050),
    ("a.m4a", "ipod", "aac", 32000),
])
def test_compressed_formats(tmp_path: Path, name: str, container: str, codec: str,
                            rate: int) -> None:
    encode_audio(tmp_path / name, container, codec, sine(523.25, 1.0, rate), rate)
    wave = load_audio(tmp_path / name)
    assert abs(wave.duration - 1.0) < 0.1
    assert abs(peak_hz(wave.samples, 16000) - 523.25) < 4


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", 25, audio=Waveform(sine(440, 1.0, 16000), 16000))
    wave = load_audio(tmp_path / "v.mp4")
    assert abs(wave.duration - 1.0) < 0.05
    assert abs(peak_hz(wave.samples, 16000) - 440) < 3


def test_mpeg_program_stream_audio(tmp_path: Path) -> None:
    path = tmp_path / "v.mpg"
    with av.open(str(path), "w", format="mpeg") as out:
        video = out.add_stream("mpeg1video", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("mp2", rate=44100, layout="mono")
        audio.codec_context.open()
        for i in range(25):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = i
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        tone = (sine(440, 1.0, 44100) * 32767).astype(np.int16)
        size = audio.codec_context.frame_size
        for start in range(0, tone.size - size + 1, size):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + size], format="s16",
                                               layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    wave = load_audio(path)
    assert abs(wave.duration - 1.0) < 0.1
    assert abs(peak_hz(wave.samples, 16000) - 440) < 3


def test_wav_with_mp3_extension(tmp_path: Path) -> None:
    sf.write(tmp_path / "really_a_wav.mp3", sine(440, 0.5, 16000), 16000)
    wave = load_audio(tmp_path / "really_a_wav.mp3")
    assert wave.samples.size == 8000


def test_corrupt_and_empty_audio(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "noise.wav").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    good = tmp_path / "good.wav"
    sf.write(good, sine(440, 0.5, 16000), 16000)
    broken = bytearray(good.read_bytes())
    broken[:44] = rng.integers(0, 256, 44, dtype=np.uint8).tobytes()
    (tmp_path / "header.wav").write_bytes(bytes(broken))
    (tmp_path / "zero.wav").write_bytes(b"")
    sf.write(tmp_path / "silent_header.wav", np.zeros(0, np.float32), 16000)
    for name in ("noise.wav", "header.wav"):
        with pytest.raises(AudioError, match="cannot decode"):
            load_audio(tmp_path / name)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "zero.wav")
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(tmp_path / "silent_header.wav")
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nowhere.wav")


def test_video_without_audio_track(tmp_path: Path) -> None:
    write_video(tmp_path / "mute.mp4", 5)
    with pytest.raises(AudioError, match="no audio track"):
        load_audio(tmp_path / "mute.mp4")


# --------------------------------------------------------------------------------------------
# writing video


@pytest.mark.parametrize("audio_seconds", [1.0, 3.0])  # shorter (padded) and longer (trimmed)
def test_video_with_audio_probes_right(tmp_path: Path, audio_seconds: float) -> None:
    out = tmp_path / "out.mp4"
    write_video(out, 30, audio=Waveform(sine(440, audio_seconds, 22050), 22050))
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (64, 48, 30)
    assert info.fps == pytest.approx(25.0)
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert info.duration_s == pytest.approx(1.2)
    assert info.has_audio and abs(info.audio_duration_s - 30 / 25) <= 1 / 25
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


@pytest.mark.parametrize("name, container, codecs", [
    ("out.webm", "matroska,webm", ("vp9", "opus")), ("out.mov", "mov,mp4,m4a,3gp,3g2,mj2", ("h264", "aac")),
    ("out.mkv", "matroska,webm", ("h264", "aac")), ("out", "mov,mp4,m4a,3gp,3g2,mj2", ("h264", "aac"))])
def test_the_extension_picks_the_format(tmp_path: Path, name: str, container: str, codecs) -> None:
    out = tmp_path / name
    write_video(out, 30, audio=Waveform(sine(440, 1.2, 16000), 16000))
    with av.open(str(out)) as c:
        assert c.format.name == container
        assert tuple(s.codec_context.name for s in c.streams) == codecs
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames, info.pix_fmt) == (64, 48, 30, "yuv420p")
    assert info.has_audio and abs(info.audio_duration_s - 30 / 25) <= 1 / 25
    assert peak_hz(load_audio(out).samples, 16000) == pytest.approx(440, abs=5)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_an_extension_without_a_format_is_refused_before_writing(tmp_path: Path) -> None:
    for name in ("out.png", "out.gif", "out.avi"):
        with pytest.raises(OutputError, match=r"cannot write out\.\w+: .*\.mp4.*\.webm"):
            VideoWriter(tmp_path / name, 16, 16)
    assert not os.listdir(tmp_path)


def test_ntsc_rate_and_no_audio(tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mp4"
    write_video(out, 12, fps=30000 / 1001)
    info = probe_video(out)
    assert info.num_frames == 12 and info.fps == pytest.approx(29.97, abs=0.01)
    assert not info.has_audio and info.audio_duration_s == 0.0


def test_frames_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    colours = rng.integers(30, 226, (6, 3))
    out = tmp_path / "c.mp4"
    with VideoWriter(out, 32, 16, fps=10) as writer:
        for colour in colours:
            writer.write(np.broadcast_to(colour.astype(np.uint8), (16, 32, 3)).copy())
    frames = list(iter_video_frames(out))
    assert len(frames) == 6
    for frame, colour in zip(frames, colours):
        assert frame.shape == (16, 32, 3) and frame.dtype == np.uint8
        assert np.abs(frame.reshape(-1, 3).mean(axis=0) - colour).max() < 4


@pytest.mark.parametrize("interrupt", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_inside_with_leaves_nothing(tmp_path: Path, interrupt: BaseException) -> None:
    with pytest.raises(type(interrupt)):
        with VideoWriter(tmp_path / "x.mp4", 16, 16) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise interrupt
    assert os.listdir(tmp_path) == []


def test_failure_keeps_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous render")
    with pytest.raises(ValueError):
        with VideoWriter(out, 16, 16) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            writer.write(np.zeros((8, 8, 3), np.uint8))  # wrong shape
    assert out.read_bytes() == b"previous render"
    assert os.listdir(tmp_path) == ["keep.mp4"]
    write_video(out, 3)
    assert probe_video(out).num_frames == 3


def test_disk_full_becomes_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self, packets) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VideoWriter, "_mux", full)
    with pytest.raises(OutputError, match="disk is full"):
        with VideoWriter(tmp_path / "x.mp4", 16, 16) as writer:
            for _ in range(50):
                writer.write(np.zeros((16, 16, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def test_output_path_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "x.mp4", 16, 16)
    with pytest.raises(OutputError, match="is a folder"):
        check_output_path(tmp_path)
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"x")
    (tmp_path / "link.jpg").symlink_to(photo)
    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="input"):
        check_output_path(tmp_path / "sub" / ".." / "me.jpg", [tmp_path / "other.wav", photo])
    with pytest.raises(OutputError, match="input"):
        check_output_path(tmp_path / "link.jpg", [photo])
    assert check_output_path(tmp_path / "new.mp4", [photo]) == tmp_path / "new.mp4"
    monkeypatch.setattr(media.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(OutputError, match="permission"):
        check_output_path(tmp_path / "new.mp4")


def test_bad_sizes_and_frames(tmp_path: Path) -> None:
    assert even_size(65, 49) == (64, 48) and even_size(64, 48) == (64, 48)
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 65, 48)
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "f.mp4", 16, 16) as writer:
            writer.write(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", 16, 16):
            pass
    assert os.listdir(tmp_path) == []
