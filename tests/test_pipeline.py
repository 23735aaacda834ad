"""End to end: files in, mp4 out, on speech with known phone timings."""
from __future__ import annotations

import numpy as np
import pytest

from talkinghead import AudioError, Config, FaceConfig, NoFaceError, Pipeline
from talkinghead.face import regions as R
from talkinghead.media import iter_video_frames, probe_video
from talkinghead.render.renderer import Renderer


@pytest.mark.parametrize("mode", ["crop", "extcrop", "resize", "full", "extfull"])
def test_each_crop_mode_writes_a_video_of_the_right_size_and_length(mode, portrait_path,
                                                                    short_speech_wav, tmp_path):
    out = tmp_path / f"{mode}.mp4"
    size = 256 if mode in ("crop", "extcrop", "resize") else None
    result = Pipeline(Config(face=FaceConfig(preprocess=mode, size=size))).run(
        portrait_path, short_speech_wav, out)
    info = probe_video(out)
    if size:
        assert (info.width, info.height) == (size, size)
    else:
        assert (info.width, info.height) == (512, 600)  # the photo's own resolution
    assert info.num_frames == result.num_frames
    duration = 0
    from talkinghead.media import load_audio
    duration = load_audio(short_speech_wav).duration
    assert abs(info.num_frames / 25.0 - duration) <= 1 / 25.0
    assert info.has_audio and abs(info.audio_duration_s - info.num_frames / 25.0) <= 1 / 25.0
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"


def _mouth_gaps(pipeline, portrait_path, speech):
    """Per-frame inner-lip gap (in IOD) of the rendered mesh, and the motion's fps."""
    from talkinghead.media import load_image

    prepared = pipeline.prepare(load_image(portrait_path), speech.waveform, phones=speech.phones)
    renderer = Renderer(prepared.framing, prepared.fit)
    m = prepared.motion
    gaps = []
    for i in range(m.num_frames):
        mesh = renderer.posed_mesh(m.expression[i], np.zeros(6, np.float32), 0.0)
        gap = mesh[R.LOWER_INNER[3:8], 1] - mesh[R.UPPER_INNER[3:8], 1]
        gaps.append(gap.mean() / prepared.fit.iod)
    return np.array(gaps), m.fps


def test_lips_close_on_bilabials_and_open_on_vowels(portrait_path, short_speech):
    gaps, fps = _mouth_gaps(Pipeline(), portrait_path, short_speech)
    bilabial_closed, vowel_open = [], []
    for p in short_speech.phones:
        frames = gaps[int(p.start * fps):max(int(p.start * fps) + 1, int(np.ceil(p.end * fps)))]
        if p.label in ("P", "B", "M"):
            bilabial_closed.append(frames.min() < 0.02)
        if p.label in ("AA", "AE", "AH", "AO", "AW", "AY", "EH"):
            vowel_open.append(frames.max() > 0.05)
    assert len(bilabial_closed) >= 4 and len(vowel_open) >= 3
    assert np.mean(bilabial_closed) >= 0.95
    assert np.mean(vowel_open) >= 0.9


def test_mouth_rests_in_silence(portrait_path, short_speech):
    from talkinghead.types import Waveform

    w = short_speech.waveform
    pad = np.zeros(w.sample_rate, dtype=np.float32)
    padded = Waveform(np.concatenate([pad, w.samples, pad]), w.sample_rate)
    from talkinghead.types import Phone
    phones = tuple(Phone(p.label, p.start + 1.0, p.end + 1.0) for p in short_speech.phones)
    phones = (Phone("SIL", 0.0, 1.0),) + phones + (Phone("SIL", phones[-1].end, phones[-1].end + 1.0),)
    speech = type(short_speech)(padded, phones)
    from talkinghead.motion.expression import BREATH_LEAD_S

    gaps, fps = _mouth_gaps(Pipeline(), portrait_path, speech)
    breath = int((1.0 - BREATH_LEAD_S) * fps)          # the lips part to breathe in from here
    assert gaps[int(0.2 * fps):breath].max() < 0.01
    assert 0.01 < gaps[breath:int(0.95 * fps)].max() < 0.08    # slightly: speech opens > 0.1
    assert gaps[-int(0.75 * fps):].max() < 0.01
    assert gaps[int(1.2 * fps):-int(1.2 * fps)].max() > 0.1


def test_same_seed_gives_identical_frames_and_another_seed_differs(portrait_path, short_speech):
    from talkinghead.media import load_image

    portrait = load_image(portrait_path)

    def frames(seed):
        p = Pipeline(Config(face=FaceConfig(size=128), seed=seed))
        prepared = p.prepare(portrait, short_speech.waveform, phones=short_speech.phones)
        return np.stack(list(p.frames(prepared)))

    a, b, c = frames(3), frames(3), frames(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_photo_on_its_side_or_upside_down_is_animated_upright(portrait_path, short_speech,
                                                                 turns, caplog):
    """A photo whose orientation tag was lost (the face on its side, or upside down: the demo
    portrait's face is then not found as it is) animates exactly as the upright photo, with a
    warning; a head tilted 30° is left as it is."""
    import cv2

    from talkinghead.face.landmarks import find_upright_face
    from talkinghead.media import load_image
    from talkinghead.types import Portrait

    upright = load_image(portrait_path)

    def frames(pixels: np.ndarray) -> np.ndarray:
        p = Pipeline(Config(face=FaceConfig(size=96)))
        prepared = p.prepare(Portrait(pixels), short_speech.waveform, phones=short_speech.phones)
        return np.stack(list(p.frames(prepared)))

    turned = np.ascontiguousarray(np.rot90(upright.pixels, turns))
    with caplog.at_level("WARNING", logger="talkinghead.face.landmarks"):
        assert np.array_equal(frames(turned), frames(upright.pixels))
    assert "turned upright" in caplog.text
    h, w = upright.pixels.shape[:2]
    tilt = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    tilted = cv2.warpAffine(upright.pixels, tilt, (w, h), borderMode=cv2.BORDER_REPLICATE)
    assert find_upright_face(tilted)[0] is tilted


def test_no_face_raises_and_leaves_no_output(tmp_path, short_speech_wav):
    from PIL import Image

    img = tmp_path / "wall.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((300, 300, 3)) * 40 + 100).astype(np.uint8)).save(img)
    out = tmp_path / "out.mp4"
    with pytest.raises(NoFaceError):
        Pipeline().run(img, short_speech_wav, out)
    assert list(tmp_path.iterdir()) == [img]


def test_corrupt_audio_raises_and_leaves_no_output(tmp_path, portrait_path):
    bad = tmp_path / "speech.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    out = tmp_path / "out.mp4"
    with pytest.raises(AudioError):
        Pipeline().run(portrait_path, bad, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]


def test_rendered_mouth_opens_in_pixels(portrait_path, short_speech_wav, tmp_path):
    """The video itself (not only the mesh) changes around the mouth and not far from it."""
    out = tmp_path / "v.mp4"
    Pipeline(Config(face=FaceConfig(size=256))).run(portrait_path, short_speech_wav, out)
    frames = np.stack(list(iter_video_frames(out))).astype(np.float32)
    change = np.abs(frames - frames[0]).mean(axis=(0, 3))
    h, w = change.shape
    mouth = change[int(h * 0.55):int(h * 0.8), int(w * 0.35):int(w * 0.65)].mean()
    corner = change[: h // 8, : w // 8].mean()
    assert mouth > 4 * max(corner, 0.5)


def test_face_search_leaves_unused_mediapipe_modules_unloaded_and_usable(portrait_path):
    """MediaPipe's drawing helpers (which import pyplot, ~0.4 s) and its Tasks API (~0.1 s,
    sounddevice) load only when used, and then work."""
    import subprocess
    import sys

    code = ("import sys; from talkinghead.face.landmarks import find_face; "
            "from talkinghead.media import load_image; "
            f"find_face(load_image({str(portrait_path)!r}).pixels); "
            "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'lazy'); "
            "print('tasks' if 'mediapipe.tasks.python.vision' in sys.modules else 'lazy'); "
            "import mediapipe as mp; print(mp.solutions.drawing_utils.DrawingSpec().thickness); "
            "print(mp.tasks.vision.FaceLandmarker.__name__, mp.tasks.BaseOptions.__name__); "
            "from mediapipe.tasks.python.audio import AudioClassifier; print(AudioClassifier.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["lazy", "lazy", "2", "FaceLandmarker", "BaseOptions",
                                  "AudioClassifier"]


def test_cli_reports_the_wall_time_not_the_sum_of_overlapping_stages(portrait_path, short_speech_wav,
                                                                     tmp_path, capsys):
    """Render and encode overlap in threads: the line "wrote ... in X s" must not claim more
    time than the command took."""
    import re
    import time

    from talkinghead.cli import main

    out = tmp_path / "v.mp4"
    start = time.perf_counter()
    assert main(["generate", "--image", str(portrait_path), "--audio", str(short_speech_wav),
                 "-o", str(out), "--size", "256"]) == 0
    took = time.perf_counter() - start
    line = capsys.readouterr().err.strip().splitlines()[-1]
    claimed = float(re.search(r" in ([0-9.]+) s \(", line).group(1))
    assert line.startswith(f"wrote {out}") and 0 < claimed <= took + 0.05


def test_cli_text_speaks_in_the_language_and_times_the_lips_to_its_phones(portrait_path, tmp_path):
    """``generate --text`` speaks offline: the video lasts as long as the speech, has its sound,
    and the lips follow the spoken phones (exact timing, not recognition);
    --language picks the voice, so German text is spoken differently from English."""
    import json

    from talkinghead.audio.tts import synthesize, voice_for
    from talkinghead.cli import main

    text = "Bob met a papa bear by the mall."
    out, motion = tmp_path / "t.mp4", tmp_path / "t.json"
    assert main(["generate", "--image", str(portrait_path), "--text", text, "-o", str(out),
                 "--size", "128", "--quiet", "--export-motion", str(motion)]) == 0
    speech = synthesize(text)
    info = probe_video(out)
    assert abs(info.num_frames / 25.0 - speech.waveform.duration) <= 1 / 25.0 and info.has_audio
    from talkinghead.media import load_image

    written = json.loads(motion.read_text())["expression"]
    pipeline = Pipeline(Config(face=FaceConfig(size=128)))
    timed = pipeline.prepare(load_image(portrait_path), speech.waveform, phones=speech.phones)
    recognized = pipeline.prepare(load_image(portrait_path), speech.waveform)
    jaw = timed.fit.channels.index("jaw_open")
    np.testing.assert_allclose(written["jaw_open"], timed.motion.expression[:, jaw], atol=1e-6)
    assert not np.allclose(written["jaw_open"], recognized.motion.expression[:, jaw], atol=1e-3)
    german = synthesize("Guten Tag, wie geht es Ihnen?", voice_for("de"))
    english = synthesize("Guten Tag, wie geht es Ihnen?", voice_for("en"))
    assert [p.label for p in german.phones] != [p.label for p in english.phones]
    assert main(["generate", "--image", str(portrait_path), "--text", "hi", "--audio",
                 str(out), "-o", str(tmp_path / "x.mp4")]) == 2


def test_cli_crf_sets_the_videos_quality(portrait_path, tmp_path):
    """``--crf`` reaches the encoder: at 4 the file is over 3× larger than at 40 and its
    frames differ visibly (by more than a grey level on average)."""
    from talkinghead.cli import main

    def frames_and_size(crf: int) -> tuple[np.ndarray, int]:
        out = tmp_path / f"crf{crf}.mp4"
        assert main(["generate", "--image", str(portrait_path), "--idle", "1", "-o", str(out),
                     "--size", "128", "--quiet", "--crf", str(crf)]) == 0
        return np.stack(list(iter_video_frames(out))).astype(int), out.stat().st_size

    fine, fine_bytes = frames_and_size(4)
    coarse, coarse_bytes = frames_and_size(40)
    assert fine_bytes > 3 * coarse_bytes
    assert np.abs(coarse - fine).mean() > 1.0
