"""Streaming: chunks in, frames out with bounded look-ahead, as many frames as the file path."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.media import load_image, probe_video
from talkinghead.stream import LOOKAHEAD_S, SAMPLE_RATE, Stream, stream_to_file

CONFIG = Config(face=FaceConfig(size=128))


@pytest.fixture(scope="module")
def speech_16k(short_speech) -> np.ndarray:
    w = short_speech.waveform
    return resample_poly(w.samples, SAMPLE_RATE, w.sample_rate).astype(np.float32)


@pytest.fixture(scope="module")
def portrait(portrait_path):
    return load_image(portrait_path)


@pytest.fixture(scope="module")
def face(portrait):
    return Stream(portrait, CONFIG).face


def _chunked(stream: Stream, samples: np.ndarray, chunk: int) -> list:
    frames = []
    for i in range(0, len(samples), chunk):
        for f in stream.feed(samples[i:i + chunk]):
            frames.append((f, (i + len(samples[i:i + chunk])) / SAMPLE_RATE))
    return frames + [(f, None) for f in stream.finish()]


def test_stream_emits_as_many_frames_as_the_file_pipeline(portrait, face, short_speech, speech_16k):
    prepared = Pipeline(CONFIG).prepare(portrait, short_speech.waveform, phones=short_speech.phones)
    frames = _chunked(Stream(portrait, CONFIG, face=face), speech_16k, 320)
    assert len(frames) == prepared.motion.num_frames
    assert [f.index for f, _ in frames] == list(range(len(frames)))


def test_frames_arrive_within_the_look_ahead_budget(portrait, face, speech_16k):
    chunk = 320  # 20 ms
    frames = _chunked(Stream(portrait, CONFIG, face=face), speech_16k, chunk)
    live = [(f, fed) for f, fed in frames if fed is not None]
    assert len(live) > 0.8 * len(frames)
    budget = LOOKAHEAD_S + chunk / SAMPLE_RATE + 1e-6
    assert all(fed - f.time <= budget for f, fed in live)
    assert live[0][1] <= 0.5 / CONFIG.video.fps + budget  # the first frame needs ≤ 0.14 s of audio


def test_stream_output_does_not_depend_on_chunk_size(portrait, face, speech_16k):
    a = [f.pixels for f, _ in _chunked(Stream(portrait, CONFIG, face=face), speech_16k, 160)]
    b = [f.pixels for f, _ in _chunked(Stream(portrait, CONFIG, face=face), speech_16k, 4000)]
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len({x.tobytes() for x in a}) > len(a) // 2  # the face moves


def test_stream_to_file_writes_video_with_the_speech(portrait, short_speech_wav, tmp_path):
    out = tmp_path / "live.mp4"
    count = stream_to_file(portrait, short_speech_wav, out, CONFIG)
    info = probe_video(out)
    assert info.num_frames == count and (info.width, info.height) == (128, 128)
    assert info.has_audio


@pytest.mark.parametrize("flags, words", [
    (["--yaw", "10"], "--yaw/--pitch/--roll"),
    (["--transcript", "Hello."], "--transcript"),
    (["--plan", "phrase", "--transcript", "Hello."], "--transcript"),
    (["--export-motion", "motion.json"], "--export-motion"),
])
def test_stream_refuses_the_options_it_cannot_apply(portrait_path, short_speech_wav, tmp_path,
                                                    capsys, flags, words):
    from talkinghead.cli import main

    out = tmp_path / "live.mp4"
    args = ["stream", "--image", str(portrait_path), "--audio", str(short_speech_wav),
            "-o", str(out)]
    assert main(args + flags + ["--quiet"]) == 2
    assert words in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("plan", ["live", "phrase"])
def test_both_plans_apply_the_emotion(portrait, face, speech_16k, plan):
    from dataclasses import replace

    from talkinghead.config import MotionConfig

    happy = replace(CONFIG, motion=MotionConfig(emotion="happy"), seed=4)
    frames = _chunked(Stream(portrait, happy, face=face, motion=plan), speech_16k, 3200)
    calm = _chunked(Stream(portrait, replace(CONFIG, seed=4), face=face, motion=plan),
                    speech_16k, 3200)
    smile = Stream(portrait, happy, face=face).channels.index("smile")

    def mean(got: list, pick) -> float:
        return float(np.mean([pick(f) for f, _ in got[13:]]))  # after the half-second fade-in

    def smiling(f) -> float:
        return f.expression[smile]

    assert mean(frames, smiling) > mean(calm, smiling) + 0.5
    assert mean(frames, lambda f: f.pose[0]) < mean(calm, lambda f: f.pose[0])  # chin up
    assert frames[0][0].expression[smile] < 0.1  # faded in, not switched on


def test_live_lips_close_in_labial_valleys_and_open_on_vowels(portrait, face):
    from talkinghead.audio.tts import synthesize
    from talkinghead.face import regions as R

    closed, opened = [], []
    for sentence in ("My mom made a big map of Bombay.", "Maybe the baby will bump the bumper."):
        speech = synthesize(sentence)
        stream = Stream(portrait, CONFIG, sample_rate=speech.waveform.sample_rate, face=face)
        frames = _chunked(stream, speech.waveform.samples, 441)
        gaps = np.array([_lip_gap(stream, f.expression, R) for f, _ in frames])
        for p in speech.phones:
            span = gaps[int(p.start * 25):max(int(p.start * 25) + 1, int(np.ceil(p.end * 25)))]
            if p.label in ("P", "B", "M"):
                closed.append(span.min() < 0.02)
            if p.label in ("AA", "AE", "AH", "AO", "AW", "AY", "EH"):
                opened.append(span.max() > 0.05)
    assert len(closed) >= 12 and len(opened) >= 6
    assert np.mean(closed) >= 0.5     # 0.1 when the jaw alone followed loudness
    assert np.mean(opened) >= 0.75


def _lip_gap(stream: Stream, expression: np.ndarray, regions) -> float:
    """Inner-lip gap in inter-ocular distances of the face posed with ``expression``."""
    mesh = stream.renderer.posed_mesh(expression, np.zeros(6, np.float32), 0.0)
    gap = mesh[regions.LOWER_INNER[3:8], 1] - mesh[regions.UPPER_INNER[3:8], 1]
    return float(gap.mean()) / stream.renderer.fit.iod


def test_release_ratio_is_read_where_the_sound_comes_back():
    from talkinghead.motion.live import _release_ratio

    db = np.array([-20, -30, -60, -60, -58, -35, -20], float)
    ratio = np.array([10, 10, 0, 0, 0, -12, 5], float)
    assert _release_ratio(db, ratio, 1) == -12    # a /t/-like burst ends the closure
    assert _release_ratio(db[:5], ratio[:5], 1) == np.inf  # the closure has not ended yet


def test_phrase_plan_streams_recognized_lips_independent_of_chunk_size(portrait, face,
                                                                       short_speech, speech_16k):
    """``motion="phrase"``: frames follow each recognized phrase; whatever the chunk sizes, the
    same frames, as many as the file pipeline makes, with lips that differ from the live plan."""
    def run(chunk: int, motion: str) -> list:
        return _chunked(Stream(portrait, CONFIG, face=face, motion=motion), speech_16k, chunk)

    a, b, live = run(320, "phrase"), run(6000, "phrase"), run(320, "live")
    assert len(a) == len(b) == len(live)
    assert all(np.array_equal(x.pixels, y.pixels) for (x, _), (y, _) in zip(a, b))
    assert a[0][0].audio_seen >= short_speech.waveform.duration - 0.02  # one piece: heard whole
    assert not np.allclose(np.stack([f.expression for f, _ in a]),
                           np.stack([f.expression for f, _ in live]))


def test_hearing_ahead_waits_for_the_first_frame(portrait, face, short_speech, speech_16k):
    """``Stream.frames`` hears the chunks in a thread, far ahead of rendering, but only once
    the first frame is out: hearing holds the GIL for long stretches (PocketSphinx decodes a
    piece in one call) and would hold the first frame back."""
    from talkinghead.stream import PlannedMotion

    track = Pipeline(CONFIG).prepare(portrait, short_speech.waveform, phones=short_speech.phones).motion
    pulled: list[int] = []
    step = SAMPLE_RATE // 5  # 5 frames a block: more than the render threads take at once

    def chunks():
        for i in range(0, len(speech_16k), step):
            pulled.append(i)
            yield speech_16k[i:i + step]

    frames = Stream(portrait, CONFIG, face=face, motion=PlannedMotion(track)).frames(chunks())
    next(frames)
    heard_at_first_frame = len(pulled)
    assert len(list(frames)) > 10 and len(pulled) >= 10
    assert heard_at_first_frame <= len(pulled) // 2


def test_opencv_runs_serially_while_several_render_threads_render(portrait, face, speech_16k):
    """Two render threads already fill the cores; OpenCV's pool is cut to one thread while
    they render, and given back its count afterwards, also when streams overlap."""
    import threading

    import cv2

    from talkinghead.render.parallel import opencv_serial

    before = cv2.getNumThreads()
    stream = Stream(portrait, CONFIG, face=face)
    assert stream.render_threads > 1
    seen = [cv2.getNumThreads() for _ in stream.frames([speech_16k])]
    assert len(seen) > 10 and set(seen) == {1}
    assert cv2.getNumThreads() == before
    inside, release = threading.Event(), threading.Event()

    def other():
        with opencv_serial():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=other)
    worker.start()
    inside.wait(5)
    with opencv_serial():
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == 1  # the other block still runs
    release.set()
    worker.join()
    assert cv2.getNumThreads() == before


def test_live_brows_rest_in_pauses_and_rise_while_speaking_and_on_strong_onsets():
    """The live stream's brows, causal: at rest through a long pause, held up while speaking,
    raised on strong syllable onsets but at most once every LIVE_BROW_GAP_S."""
    from talkinghead.audio.tts import synthesize
    from talkinghead.face.model import CHANNELS
    from talkinghead.motion.expression import BROW_MAX, BROW_SPEAKING
    from talkinghead.motion.live import LIVE_BROW_GAP_S, LiveMotion

    phrase = synthesize("Good morning, everybody. Today we talk about maps.").waveform
    phrase = resample_poly(phrase.samples, SAMPLE_RATE, phrase.sample_rate).astype(np.float32)
    pause = np.zeros(2 * SAMPLE_RATE, np.float32)
    audio = np.concatenate([pause, phrase, pause, phrase])
    live = LiveMotion(CHANNELS, Config())
    tracks = live.feed(audio[:12345]) + live.feed(audio[12345:]) + live.finish(len(audio) // 640)
    brow = np.concatenate([t.expression[:, CHANNELS.index("brow_raise")] for t in tracks])
    speaking = np.arange(len(brow)) / 25.0
    first = (speaking > 2.5) & (speaking < 2 + len(phrase) / SAMPLE_RATE)
    assert brow[:40].max() < 0.02                                   # silence before speech
    assert np.median(brow[first]) > 0.8 * BROW_SPEAKING             # held up while speaking
    rest = int((4 + len(phrase) / SAMPLE_RATE) * 25)                # late in the second pause
    assert brow[rest - 5:rest].max() < 0.35 * brow[first].max()
    rises = np.flatnonzero(np.diff(brow) > 0.08)                     # a raise starts
    starts = rises[np.r_[True, np.diff(rises) > 3]]
    assert len(starts) >= 2 and np.all(np.diff(starts) >= LIVE_BROW_GAP_S * 25 - 1)
    assert brow.max() <= BROW_MAX
