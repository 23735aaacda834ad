"""Motion stage: head-motion styles, seeds, free view, emotions, blinks, idle."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from talkinghead.config import EMOTIONS, NUM_POSE_STYLES, MotionConfig
from talkinghead.face.model import CHANNELS
from talkinghead.motion.blink import blink_times, one_blink
from talkinghead.motion.gaze import eye_turn
from talkinghead.motion.pose import free_view, pose_style, pose_track
from talkinghead.motion.track import make_motion
from talkinghead.types import AudioFeatures, Phone

FPS = 25.0


def blink_track(rng: np.random.Generator, fps: float, num_frames: int) -> np.ndarray:
    """(T,) eyelid closure of ``blink_times`` as drawn (no waiting for pauses): the oracle."""
    frames = np.arange(num_frames)
    out = np.zeros(num_frames, dtype=np.float32)
    for start, length in blink_times(rng, num_frames / fps):
        out = np.maximum(out, one_blink(frames, fps, start, length))
    return out


def speech_like(seconds: float = 20.0, seed: int = 1) -> AudioFeatures:
    """Features of made-up speech: phrases of 1.5–3.5 s between pauses, ~4 onsets a second."""
    rng = np.random.default_rng(seed)
    rate, n = 100, int(seconds * 100)
    activity = np.zeros(n, np.float32)
    t = 0.3
    while t < seconds:
        length = rng.uniform(1.5, 3.5)
        activity[int(t * rate):int((t + length) * rate)] = 1
        t += length + rng.uniform(0.4, 1.0)
    onsets = np.zeros(n, np.float32)
    speech = np.nonzero(activity)[0]
    picks = rng.choice(speech, size=int(len(speech) / rate * 4), replace=False)
    onsets[picks] = rng.uniform(0.1, 1.0, len(picks))
    pitch = np.where(activity > 0, 120 + 20 * rng.standard_normal(n), 0).astype(np.float32)
    loud = np.where(activity > 0, -25.0, -80.0).astype(np.float32)
    phones = (Phone("SIL", 0.0, 0.3), Phone("AA", 0.3, 0.5), Phone("M", 0.5, 0.6),
              Phone("UW", 0.6, 0.8), Phone("SIL", 0.8, seconds))
    return AudioFeatures(rate, loud, activity, pitch, onsets, phones, seconds)


def silence(seconds: float) -> AudioFeatures:
    n = int(seconds * 100)
    zeros = np.zeros(n, np.float32)
    return AudioFeatures(100, zeros - 100, zeros, zeros, zeros, (Phone("SIL", 0, seconds),), seconds)


def _style_descriptor(pose: np.ndarray) -> np.ndarray:
    """log std of pitch, yaw, roll (degrees) and log of the normalised speed (tempo)."""
    deg = np.degrees(pose[:, :3].astype(np.float64))
    std = deg.std(axis=0)
    speed = np.abs(np.diff(deg, axis=0)).mean(axis=0) * FPS / std
    return np.concatenate([np.log(std), [np.log(speed.mean())]])


def test_every_pose_style_differs_measurably_from_every_other():
    features = speech_like()
    desc = np.array([_style_descriptor(pose_track(features, FPS, 500, pose_style(s),
                                                  np.random.default_rng(0)))
                     for s in range(NUM_POSE_STYLES)])
    for a, b in itertools.combinations(range(NUM_POSE_STYLES), 2):
        # amplitude, preferred axis or tempo differs by at least ~28 %
        assert np.abs(desc[a] - desc[b]).max() > 0.25, (a, b)
    # the factors span a real range: amplitude ×4.6, tempo ×3.6
    assert np.ptp(desc[:, 1]) > 1.2 and np.ptp(desc[:, 3]) > 0.9


def test_same_seed_repeats_exactly_and_another_seed_differs():
    features = speech_like(6.0)
    config = MotionConfig(pose_style=7, emotion="happy")
    a, b = (make_motion(features, CHANNELS, FPS, config, seed=5) for _ in range(2))
    c = make_motion(features, CHANNELS, FPS, config, seed=6)
    for name in ("expression", "pose", "blink"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.pose, c.pose) and not np.array_equal(a.blink, c.blink)


def test_head_is_calmer_in_pauses_than_in_speech():
    features = speech_like(30.0)
    pose = pose_track(features, FPS, 750, pose_style(0), np.random.default_rng(3))
    act = np.interp(np.arange(750) / FPS, np.arange(len(features.activity)) / 100, features.activity)
    speed = np.abs(np.diff(pose[:, :3], axis=0)).sum(axis=1)
    assert speed[act[1:] > 0.5].mean() > 1.5 * speed[act[1:] < 0.5].mean()


def test_head_nods_reach_their_lowest_point_on_stressed_onsets():
    """A nod starts a little before the stressed syllable and bottoms out on it: the head is
    lowest and still at the onset (a beat), as speakers time nods to stress."""
    from dataclasses import replace

    features = speech_like(8.0)
    onsets = np.zeros_like(features.onsets)
    onsets[[150, 420]] = 1.0                                    # strong onsets at 1.5 s and 4.2 s
    nodding = replace(features, onsets=onsets, activity=np.ones_like(onsets))
    quiet = replace(nodding, onsets=np.zeros_like(onsets))
    a = pose_track(nodding, FPS, 200, pose_style(0), np.random.default_rng(0))
    b = pose_track(quiet, FPS, 200, pose_style(0), np.random.default_rng(0))
    nod = np.degrees(a[:, 0] - b[:, 0])
    for frame in (int(1.5 * FPS), int(4.2 * FPS)):
        near = nod[frame - 12:frame + 13]
        assert near.max() > 1.0                                 # chin down
        assert abs(int(np.argmax(near)) - 12) <= 2              # lowest on the onset
        assert np.abs(nod[frame - 20:frame - 8]).max() < 0.3 * near.max()  # not long before


def test_free_view_lists_interpolate_over_time():
    assert np.allclose(np.degrees(free_view((0.0, 20.0, -10.0), 21)[[0, 5, 10, 15, 20]]),
                       [0, 10, 20, 5, -10], atol=1e-4)
    assert np.allclose(np.degrees(free_view((7.0,), 4)), 7.0)
    assert not free_view((), 5).any()
    still = make_motion(speech_like(4.0), CHANNELS, FPS,
                        MotionConfig(still=True, yaw=(0.0, 30.0), roll=(5.0,)), seed=0)
    assert np.allclose(np.degrees(still.pose[[0, -1], 1]), [0, 30], atol=1e-3)
    assert np.allclose(np.degrees(still.pose[:, 2]), 5.0, atol=1e-4)
    assert not still.pose[:, [0, 3, 4, 5]].any()
    moving = make_motion(speech_like(4.0), CHANNELS, FPS, MotionConfig(yaw=(0.0, 30.0)), seed=0)
    plain = make_motion(speech_like(4.0), CHANNELS, FPS, MotionConfig(), seed=0)
    assert np.allclose(moving.pose[:, 1] - plain.pose[:, 1], still.pose[:, 1], atol=1e-5)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_emotions_are_layered_on_speech(emotion):
    features = speech_like(4.0)
    neutral = make_motion(features, CHANNELS, FPS, MotionConfig(), seed=0)
    felt = make_motion(features, CHANNELS, FPS, MotionConfig(emotion=emotion), seed=0)
    double = make_motion(features, CHANNELS, FPS, MotionConfig(emotion=emotion, emotion_strength=2),
                         seed=0)
    delta = felt.expression - neutral.expression
    face = [c for c, name in enumerate(CHANNELS) if not name.startswith("gaze")]  # eyes follow the head
    assert np.abs(delta[-25:]).max() > 0.3                    # a clear held expression
    assert np.abs(delta[0, face]).max() < 1e-6                # faded in from the photo
    jaw, close = CHANNELS.index("jaw_open"), CHANNELS.index("lip_close")
    assert np.array_equal(felt.expression[:, [jaw, close]], neutral.expression[:, [jaw, close]])
    assert np.abs(double.expression - neutral.expression)[-25:].max() > 1.5 * np.abs(delta[-25:]).max()
    key = {"happy": "smile", "sad": "smile", "surprised": "brow_raise", "angry": "brow_lower"}
    assert abs(delta[-1, CHANNELS.index(key[emotion])]) > 0.3    # sad: the corners turn down
    brow = CHANNELS.index("brow_raise")   # speech's brow raises stop at a full raise
    assert felt.expression[:, brow].max() <= 1 + 1e-6 and double.expression[:, brow].max() <= 2 + 1e-6
    if emotion == "angry":                # and a frown holds the brows down through speech
        speech_raises = neutral.expression[25:, brow]
        assert np.all(felt.expression[25:, brow] <= 0.25 * speech_raises + 1e-6)


def test_unknown_emotion_is_refused():
    with pytest.raises(ValueError, match="emotion"):
        MotionConfig(emotion="bored")


def test_blinks_have_natural_rate_duration_and_shape():
    rng = np.random.default_rng(11)
    blinks = blink_times(rng, 600.0)
    rate = len(blinks) / 10.0
    lengths = np.array([b[1] for b in blinks])
    gaps = np.diff([b[0] for b in blinks])
    assert 10 <= rate <= 25
    assert lengths.min() >= 0.1 and lengths.max() <= 0.4
    assert (gaps < 0.8).any()                                  # occasional double blinks
    track = blink_track(np.random.default_rng(2), 100.0, 3000)  # 100 fps: see the lid's shape
    shut = np.flatnonzero(np.diff((track >= 0.99).astype(int)) == 1) + 1  # first shut frames
    assert len(shut) >= 4
    for p in shut[:4]:
        before = np.argmax(track[p::-1] < 0.05)
        held = np.argmax(track[p:] < 0.99)
        after = np.argmax(track[p + held:] < 0.05)
        assert before < after                                  # closes faster than it opens
        assert 3 <= held <= 9                                  # and stays shut 30-90 ms
    rest = track[track < 1.0]
    assert np.mean(rest > 0.5) < 0.05                          # never resting half closed


def test_blinks_fall_in_pauses_without_changing_the_rate_or_splitting_pairs():
    """A blink due mid-word waits (at most BlinkSchedule.MAX_WAIT_S) for the jaw to rest, so
    more blinks begin while the jaw is still; the rate and the double blinks stay as drawn,
    and with no speech the blinks come exactly as drawn. Chunks do not matter."""
    from talkinghead.motion.blink import BlinkSchedule

    fps, n = 25.0, 25 * 600
    rng = np.random.default_rng(5)
    jaw = np.zeros(n, np.float32)
    t = 0
    while t < n:                                       # phrases of 1.5-3.5 s, pauses 0.3-0.9 s
        length = min(int(rng.uniform(1.5, 3.5) * fps), n - t)
        jaw[t:t + length] = 0.3 + 0.2 * np.sin(np.arange(length) * 2.1)   # syllables
        t += length + int(rng.uniform(0.3, 0.9) * fps)
    drawn = BlinkSchedule(np.random.default_rng(7), fps, n).take(n)
    np.testing.assert_allclose(drawn, blink_track(np.random.default_rng(7), fps, n), atol=1e-6)
    timed = BlinkSchedule(np.random.default_rng(7), fps, n).take(n, jaw)
    chunked = BlinkSchedule(np.random.default_rng(7), fps, n)
    parts = np.concatenate([chunked.take(b - a, jaw[a:b]) for a, b in zip(range(0, n, 333),
                                                                       list(range(333, n, 333)) + [n])])
    assert np.array_equal(timed, parts)

    def onsets(b):
        return np.flatnonzero((b[1:] > 0.05) & (b[:-1] <= 0.05)) + 1
    still = jaw < 0.05
    share = {k: np.mean([still[i] for i in onsets(b)]) for k, b in (("drawn", drawn), ("timed", timed))}
    assert share["timed"] > 1.8 * share["drawn"] and len(onsets(timed)) == len(onsets(drawn))
    pairs = lambda b: np.sum(np.diff(onsets(b)) < 0.8 * fps)   # noqa: E731
    assert pairs(timed) == pairs(drawn) > 0


def test_idle_motion_breathes_and_blinks_with_a_resting_mouth():
    m = make_motion(silence(12.0), CHANNELS, FPS, MotionConfig(), seed=4)
    assert m.num_frames == 300
    gaze = [CHANNELS.index("gaze_x"), CHANNELS.index("gaze_y")]
    assert not np.delete(m.expression, gaze, axis=1).any()    # the face rests ...
    assert np.ptp(m.expression[:, gaze[0]]) > 0.02             # ... and the eyes move
    assert (m.blink == 1.0).sum() >= 2
    pitch_deg = np.degrees(m.pose[:, 0])
    assert 0.1 < pitch_deg.std() < 3.0
    spectrum = np.abs(np.fft.rfft(m.pose[:, 4] - m.pose[:, 4].mean()))
    freqs = np.fft.rfftfreq(300, 1 / FPS)
    assert 0.15 < freqs[np.argmax(spectrum)] < 0.6             # head rises with each breath


def _loud_features(dip: bool) -> AudioFeatures:
    """1 s of steady loud speech (-20 dB) with an /m/ at 0.4–0.6 s, quiet (-60 dB) if ``dip``."""
    loud = np.full(100, -20.0, np.float32)
    if dip:
        loud[40:60] = -60.0
    ones = np.ones(100, np.float32)
    phones = (Phone("AA", 0.0, 0.4), Phone("M", 0.4, 0.6), Phone("AA", 0.6, 1.0))
    return AudioFeatures(100, loud, ones, ones * 120, ones * 0, phones, 1.0)


def test_acoustic_check_opens_lips_only_through_sound_that_stays_loud():
    from talkinghead.motion.coarticulation import mouth_targets
    from talkinghead.motion.expression import _acoustic_check
    from talkinghead.motion.visemes import TARGETS

    closure, jaw = TARGETS.index("closure"), TARGETS.index("jaw_open")
    times = np.arange(25) / FPS
    for dip, closed in ((True, True), (False, False)):
        features = _loud_features(dip)
        mouth = mouth_targets(features.phones, times)
        checked = _acoustic_check(mouth, features, FPS, 25)
        assert (checked[12, closure] > 0.9) == closed  # frame 12: the /m/ itself
        np.testing.assert_array_equal(_acoustic_check(mouth, features, FPS, 25, 0.0), mouth)
    assert checked[12, jaw] >= 0.3 > mouth[12, jaw]             # loud: the jaw opens anyway


def test_language_other_than_english_lets_loudness_reopen_a_misheard_closure():
    from talkinghead.motion.expression import expression_track

    features = _loud_features(dip=False)  # recogniser heard /m/ through sound that stays loud
    lips = CHANNELS.index("lip_close")
    english = expression_track(features, CHANNELS, FPS, 25, language="en")
    chinese = expression_track(features, CHANNELS, FPS, 25, language="zh")
    assert english[12, lips] > 0.1 > chinese[12, lips]
    np.testing.assert_array_equal(expression_track(features, CHANNELS, FPS, 25, language="en-gb"),
                                  english)


@pytest.mark.parametrize("code", ["en", "zh", "pt-br", "other"])
def test_language_codes_accepted(code):
    assert MotionConfig(language=code).language == code


@pytest.mark.parametrize("code", ["", "English", "zh_CN", "12"])
def test_language_codes_refused(code):
    with pytest.raises(ValueError, match="ISO 639"):
        MotionConfig(language=code)


def _phrases(first: str) -> AudioFeatures:
    """1.2 s of silence, ``first`` then AA to 1.8 s, a 0.3 s pause, AA to 2.6 s, silence."""
    activity = np.zeros(300, np.float32)
    activity[120:180] = activity[210:260] = 1
    loud = np.where(activity > 0, -25.0, -80.0).astype(np.float32)
    phones = (Phone("SIL", 0.0, 1.2), Phone(first, 1.2, 1.3), Phone("AA", 1.3, 1.8),
              Phone("SIL", 1.8, 2.1), Phone("AA", 2.1, 2.6), Phone("SIL", 2.6, 3.0))
    return AudioFeatures(100, loud, activity, activity * 120, activity * 0, phones, 3.0)


def test_lips_part_to_breathe_in_before_speech_after_a_long_pause_only():
    from talkinghead.motion.expression import BREATH_JAW, BREATH_LEAD_S, expression_track

    jaw = expression_track(_phrases("AA"), CHANNELS, FPS, 75)[:, CHANNELS.index("jaw_open")]
    onset, lead = 30, round(BREATH_LEAD_S * FPS)                  # speech resumes at frame 30
    assert np.all(jaw[:onset - lead] == 0)                        # at rest through the pause ...
    assert np.all(np.diff(jaw[onset - lead:onset]) > 0)           # ... then parting, steadily,
    assert 0.8 * BREATH_JAW < jaw[onset - 3] <= BREATH_JAW        # to breathe in before speaking
    assert jaw[47:52].max() < 0.02 * BREATH_JAW                   # a 0.3 s pause: no breath
    bilabial = expression_track(_phrases("M"), CHANNELS, FPS, 75)[:, CHANNELS.index("jaw_open")]
    assert bilabial[onset - lead:onset - 5].max() > 0.5 * BREATH_JAW  # a breath, then the lips
    assert bilabial[onset - 3:onset - 1].max() < 0.1 * BREATH_JAW     # close for the /m/


def test_motion_carries_the_gaze_of_its_mode():
    features = speech_like(6.0)
    natural = make_motion(features, CHANNELS, 25.0, MotionConfig(), seed=2)
    fixed = make_motion(features, CHANNELS, 25.0, MotionConfig(gaze="fixed"), seed=2)
    camera = make_motion(features, CHANNELS, 25.0, MotionConfig(gaze="camera"), seed=2)
    g = CHANNELS.index("gaze_x")
    assert not fixed.expression[:, g].any()
    assert np.allclose(camera.expression[:, [g, g + 1]],
                       eye_turn(np.zeros((camera.num_frames, 2)), camera.pose, "camera"))
    assert np.abs(natural.expression[:, g] - camera.expression[:, g]).max() > 0.0
    others = [c for c, name in enumerate(CHANNELS) if not name.startswith("gaze")]
    assert np.array_equal(natural.expression[:, others], fixed.expression[:, others])
    with pytest.raises(ValueError, match="gaze"):
        MotionConfig(gaze="wander")


def test_brows_lift_before_phrases_rise_on_stressed_syllables_and_rest_in_pauses():
    """Speakers hold their brows a little up while speaking, lift them just before a phrase
    starts and raise them briefly on stressed syllables; in a long pause they rest."""
    from dataclasses import replace

    from talkinghead.motion.expression import (BROW_GAP_S, BROW_LEAD_S, BROW_MAX, BROW_SPEAKING,
                                               expression_track)

    activity = np.zeros(800, np.float32)
    activity[100:300] = activity[500:700] = 1                     # phrases at 1-3 s and 5-7 s
    onsets = np.zeros_like(activity)
    onsets[[150, 560, 600, 640]] = [1.0, 0.9, 0.95, 1.0]          # stressed syllables
    features = replace(speech_like(8.0), activity=activity, onsets=onsets)
    brow = expression_track(features, CHANNELS, FPS, 200)[:, CHANNELS.index("brow_raise")]
    assert brow[100:112].max() < 0.05                             # at rest in the long pause
    lead = int(round(BROW_LEAD_S * FPS))
    assert brow[125 - lead] > 0.4 * BROW_SPEAKING > brow[125 - 3 * lead]  # lifting before 5 s
    assert np.all(brow[130:135] > 0.8 * BROW_SPEAKING)            # held while speaking
    peaks = [i for i in range(1, 199) if brow[i] > brow[i - 1] and brow[i] >= brow[i + 1]
             and brow[i] > BROW_SPEAKING + 0.2]
    assert any(abs(p - 37) <= 2 for p in peaks)                   # a raise on the 1.5 s syllable
    assert all(b - a >= BROW_GAP_S * FPS - 1 for a, b in zip(peaks, peaks[1:]))  # not on each one
    assert 2 <= len(peaks) <= 3 and brow.max() <= BROW_MAX
