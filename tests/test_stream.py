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
