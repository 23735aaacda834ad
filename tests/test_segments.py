"""Phrase-level motion planned in overlapping segments as the speech is heard (talkinghead.segments)."""
from __future__ import annotations

import numpy as np
import pytest

from talkinghead import Config, FaceConfig, Pipeline
from talkinghead.config import MotionConfig
from talkinghead.face.model import CHANNELS
from talkinghead.motion.track import num_frames_for
from talkinghead.segments import (OVERLAP_S, PhraseMotion, Piece, Segmenter, handover_weights,
                                  segment_motion)
from talkinghead.types import MotionTrack, Phone, Waveform

RATE = 16000
CUTS = (0.0, 18.0, 35.5, 47.3)  # piece boundaries, seconds


def _speech(seconds: float = CUTS[-1]) -> Waveform:
    """(N,) syllable-like bursts of seeded noise, 4 per second, quiet gaps between phrases."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.2 * t) > -0.5)
    noise = np.random.default_rng(1).standard_normal(len(t))
    return Waveform((0.2 * envelope * noise).astype(np.float32), RATE)


def _pieces() -> list[Piece]:
    """Recognized pieces at ``CUTS``: phones alternating M, AA, SIL every 0.25 s."""
    pieces = []
    for start, end in zip(CUTS[:-1], CUTS[1:]):
        edges = np.append(np.arange(start, end, 0.25), end)
        labels = ("M", "AA", "SIL")
        phones = tuple(Phone(labels[i % 3], float(a), float(b))
                       for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])))
        samples = _speech().samples[int(start * RATE):int(end * RATE)]
        pieces.append(Piece(start, end, phones, samples))
    return pieces


def _plan(config: Config) -> tuple[list[MotionTrack], MotionTrack]:
    """The blocks and their concatenation for ``_speech`` cut at ``CUTS``."""
    segmenter = Segmenter(CHANNELS, config, num_frames_for(CUTS[-1], config.video.fps))
    blocks = [b for piece in _pieces() for b in segmenter.push(piece)]
    blocks += segmenter.close(num_frames_for(CUTS[-1], config.video.fps))
    whole = MotionTrack(fps=config.video.fps, channels=CHANNELS,
                        expression=np.concatenate([b.expression for b in blocks]),
                        pose=np.concatenate([b.pose for b in blocks]),
                        blink=np.concatenate([b.blink for b in blocks]), meta={})
    return blocks, whole


@pytest.fixture(scope="module")
def planned() -> tuple[list[MotionTrack], MotionTrack]:
    return _plan(Config(seed=3))


def test_blocks_cover_every_frame_once(planned):
    blocks, whole = planned
    assert whole.num_frames == num_frames_for(CUTS[-1], 25.0)
    assert all(b.num_frames > 0 for b in blocks)
    assert np.isfinite(whole.pose).all() and np.isfinite(whole.expression).all()


def test_same_seed_same_motion_other_seed_differs(planned):
    _, a = planned
    _, b = _plan(Config(seed=3))
    _, c = _plan(Config(seed=4))
    assert np.array_equal(a.pose, b.pose) and np.array_equal(a.expression, b.expression)
    assert np.array_equal(a.blink, b.blink)
    assert not np.array_equal(a.pose, c.pose)


def test_pose_and_expression_continuous_at_handovers(planned):
    """At every place where one segment hands over to the next (the overlaps' both ends), the
    frame-to-frame change is no larger than anywhere else in the track."""
    _, whole = planned
    fps = whole.fps
    starts = [int(np.floor((cut - OVERLAP_S) * fps)) for cut in CUTS[1:-1]]
    ends = [int(round(cut * fps)) for cut in CUTS[1:-1]]
    near = np.zeros(whole.num_frames - 1, bool)
    for k in starts + ends:
        near[k - 3:k + 3] = True
    for track in (whole.pose, whole.expression):
        step = np.abs(np.diff(track, axis=0)).max(axis=1)
        assert step[near].max() <= step[~near].max() + 1e-6


def test_handover_blends_both_segments(planned):
    """In the first overlap, the motion is the smoothstep mix of the two segments' own."""
    _, whole = planned
    config, fps, pieces = Config(seed=3), whole.fps, _pieces()
    first = int(np.floor((CUTS[1] - OVERLAP_S) * fps))
    end = int(round(CUTS[1] * fps))
    samples = _speech().samples
    own = segment_motion(samples[:int(CUTS[1] * RATE)], pieces[0].phones, 0, CUTS[1], CHANNELS,
                         config, 0)
    nxt = segment_motion(samples[round(first / fps * RATE):int(CUTS[2] * RATE)],
                         pieces[0].phones + pieces[1].phones, first, CUTS[2], CHANNELS, config, 1)
    w = handover_weights(end - first)[:, None]
    mix = own.pose[first:end] * (1 - w) + nxt.pose[:end - first] * w
    assert np.allclose(whole.pose[first:end], mix, atol=1e-6)
    assert np.array_equal(whole.pose[:first], own.pose[:first])
    assert np.array_equal(whole.pose[end:end + 10], nxt.pose[end - first:end - first + 10])


def test_blinks_are_whole_recording_draws(planned):
    _, whole = planned
    assert whole.blink.max() > 0.9 and whole.blink.min() >= 0


def test_phrase_planning_only_for_recognized_generated_motion():
    pipeline = Pipeline(Config())
    assert pipeline.phrase_planned()
    assert not pipeline.phrase_planned(phones=(Phone("SIL", 0.0, 25.0),))
    assert not Pipeline(Config(transcript="hello")).phrase_planned()
    assert not Pipeline(Config(motion=MotionConfig(yaw=(0.0, 10.0)))).phrase_planned()


def _phrase_blocks(speech: Waveform, chunk: int, config: Config, duration: float | None):
    source = PhraseMotion(CHANNELS, config, duration)
    x = speech.samples
    blocks = [b for i in range(0, len(x), chunk) for b in source.feed(x[i:i + chunk])]
    return blocks + source.finish(num_frames_for(speech.duration, config.video.fps))


def _joined(blocks: list[MotionTrack]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.concatenate([getattr(b, k) for b in blocks]) for k in ("expression", "pose", "blink"))


def test_phrase_motion_does_not_depend_on_chunk_size():
    speech, config = _speech(30.0), Config(seed=5)
    a = _phrase_blocks(speech, 1600, config, None)
    b = _phrase_blocks(speech, 37_000, config, None)
    assert len(a) >= 3  # a first piece of ≤ 6 s, then pieces of ≤ 20 s
    assert sum(x.num_frames for x in a) == num_frames_for(30.0, 25.0)
    assert all(np.array_equal(x, y) for x, y in zip(_joined(a), _joined(b)))


def test_speech_of_one_piece_is_planned_whole_as_make_motion_plans_it():
    from talkinghead.audio.features import compute_features
    from talkinghead.audio.phones import recognize_phones
    from talkinghead.motion.track import make_motion

    speech, config = _speech(12.0), Config(seed=7)
    blocks = _phrase_blocks(speech, 4000, config, speech.duration)
    whole = make_motion(compute_features(speech, recognize_phones(speech)), CHANNELS, 25.0,
                        config.motion, config.seed)
    expression, pose, blink = _joined(blocks)
    assert np.allclose(expression, whole.expression, atol=1e-6)
    assert np.allclose(pose, whole.pose, atol=1e-6) and np.array_equal(blink, whole.blink)


def test_long_recording_video_has_every_frame(tmp_path, portrait_path):
    from talkinghead.media import load_image, probe_video

    speech = _speech(22.0)
    result = Pipeline(Config(face=FaceConfig(size=96))).animate(
        load_image(portrait_path), speech, tmp_path / "long.mp4")
    info = probe_video(result.path)
    assert info.num_frames == result.num_frames == num_frames_for(22.0, 25.0)
