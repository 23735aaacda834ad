"""Motion files: round trip, validation, rendering from a file, idle mode from the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.errors import MotionFileError
from talkinghead.face.model import CHANNELS
from talkinghead.media import probe_video
from talkinghead.motion.io import conform_channels, load_motion, retime, save_motion
from talkinghead.types import MotionTrack


def _track(n: int = 30, fps: float = 25.0) -> MotionTrack:
    rng = np.random.default_rng(0)
    blink = np.zeros(n, np.float32)
    blink[n // 3] = 1.0
    return MotionTrack(fps, CHANNELS, rng.uniform(0, 1, (n, len(CHANNELS))).astype(np.float32),
                       rng.uniform(-0.2, 0.2, (n, 6)).astype(np.float32), blink,
                       {"seed": 3, "pose_style": 7, "emotion": "happy"})


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_keeps_every_value(tmp_path, suffix):
    track = _track()
    back = load_motion(save_motion(track, tmp_path / f"m{suffix}"))
    assert back.fps == 25.0 and back.channels == CHANNELS and back.meta == track.meta
    for name in ("expression", "pose", "blink"):
        assert np.allclose(getattr(back, name), getattr(track, name), atol=1e-6)


def test_json_schema_names_channels_and_pose_axes(tmp_path):
    data = json.loads(save_motion(_track(5), tmp_path / "m.json").read_text())
    assert data["schema"] == "talkinghead.motion" and data["version"] == 1
    assert set(data["expression"]) == set(CHANNELS) and len(data["expression"]["smile"]) == 5
    assert list(data["pose"]) == ["pitch", "yaw", "roll", "x", "y", "z"]
    assert data["meta"]["seed"] == 3


def _edited(tmp_path, edit) -> str:
    data = json.loads(save_motion(_track(5), tmp_path / "m.json").read_text())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("pose"), "pose"),
    (lambda d: d.update(version=9), "version"),
    (lambda d: d.update(fps=0), "fps"),
    (lambda d: d["blink"].append(0.0), "same, non-zero length"),
    (lambda d: d["pose"]["yaw"].__setitem__(0, 7.0), "pose.yaw"),
    (lambda d: d["expression"].__setitem__("smile", ["a"] * 5), "expression.smile"),
    (lambda d: d["blink"].__setitem__(1, 1.5), "blink"),
    (lambda d: d.update(channels="smile"), "channels"),
])
def test_malformed_json_gives_a_clear_motion_file_error(tmp_path, edit, message):
    with pytest.raises(MotionFileError, match=message):
        load_motion(_edited(tmp_path, edit))


def test_unreadable_files_give_motion_file_errors(tmp_path):
    garbage = tmp_path / "m.npz"
    garbage.write_bytes(b"not a zip at all")
    truncated = tmp_path / "t.json"
    truncated.write_text('{"schema": "talkinghead.motion", ')
    for path in (garbage, truncated, tmp_path / "missing.json", tmp_path / "m.txt"):
        with pytest.raises(MotionFileError):
            load_motion(path)
    np.savez(tmp_path / "nan.npz", **{"schema": "talkinghead.motion", "version": 1, "fps": 25.0,
                                       "channels": np.array(["smile"]), "expression": np.full((3, 1), np.nan),
                                       "pose": np.zeros((3, 6)), "blink": np.zeros(3)})
    with pytest.raises(MotionFileError, match="NaN"):
        load_motion(tmp_path / "nan.npz")


def test_channels_are_matched_by_name_and_unknown_ones_refused():
    small = MotionTrack(25.0, ("smile", "jaw_open"), np.array([[0.5, 0.2]], np.float32),
                        np.zeros((1, 6), np.float32), np.zeros(1, np.float32))
    full = conform_channels(small, CHANNELS)
    assert full.expression[0, CHANNELS.index("smile")] == 0.5
    assert full.expression[0, CHANNELS.index("jaw_open")] == pytest.approx(0.2)
    assert full.expression.sum() == pytest.approx(0.7)
    odd = MotionTrack(25.0, ("wink",), np.zeros((1, 1), np.float32), np.zeros((1, 6), np.float32),
                      np.zeros(1, np.float32))
    with pytest.raises(MotionFileError, match="wink"):
        conform_channels(odd, CHANNELS)


def test_retime_keeps_duration_and_blink_peaks():
    slow = retime(_track(30, 25.0), 50.0)
    assert slow.num_frames == 60 and slow.fps == 50.0 and slow.blink.max() == 1.0


def test_cli_renders_a_motion_file_for_its_length_and_idle_without_audio(tmp_path, portrait_path,
                                                                           short_speech_wav):
    motion = tmp_path / "m.json"
    common = ["--image", str(portrait_path), "--size", "96", "--quiet"]
    assert main(["generate", *common, "--audio", str(short_speech_wav), "-o", str(tmp_path / "a.mp4"),
                 "--export-motion", str(motion), "--emotion", "sad", "--yaw", "0", "10",
                 "--language", "ZH"]) == 0
    exported = load_motion(motion)
    assert exported.meta["emotion"] == "sad" and exported.meta["language"] == "zh"
    short = MotionTrack(exported.fps, exported.channels, exported.expression[:20],
                        exported.pose[:20], exported.blink[:20], exported.meta)
    save_motion(short, motion)
    assert main(["generate", *common, "--audio", str(short_speech_wav), "--motion", str(motion),
                 "-o", str(tmp_path / "b.mp4")]) == 0
    info = probe_video(tmp_path / "b.mp4")
    assert info.num_frames == 20 and abs(info.audio_duration_s - 0.8) < 0.05
    assert main(["generate", *common, "--idle", "1.2", "-o", str(tmp_path / "c.mp4")]) == 0
    info = probe_video(tmp_path / "c.mp4")
    assert info.num_frames == 30 and info.has_audio
    motion.write_text("{}")
    assert main(["generate", *common, "--motion", str(motion), "-o", str(tmp_path / "d.mp4")]) == 2
    assert main(["generate", *common, "-o", str(tmp_path / "e.mp4")]) == 2
    assert not (tmp_path / "d.mp4").exists() and not (tmp_path / "e.mp4").exists()
