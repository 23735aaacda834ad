"""Long recordings kept out of memory: ``load_audio`` spills decoded samples to an unnamed
temporary file and every long-path consumer reads pieces of it (``Waveform.read``)."""
from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkinghead import Config, FaceConfig, Pipeline, media
from talkinghead.audio.features import compute_features, iter_16k
from talkinghead.errors import AudioError
from talkinghead.media import VideoWriter, load_audio, probe_video, write_wav
from talkinghead.motion.track import num_frames_for
from talkinghead.types import Phone, Waveform

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="open files are listed from /proc")


def _noise_wav(path: Path, seconds: float, rate: int = 44100, channels: int = 2) -> Path:
    """Seeded float noise with a NaN and infinities in it, as a float wav."""
    x = np.random.default_rng(5).uniform(-0.8, 0.8, (int(seconds * rate), channels))
    x[100, 0], x[200, 0], x[300, 0] = np.nan, np.inf, -np.inf
    sf.write(path, x.astype(np.float32), rate, subtype="FLOAT")
    return path


def _spill_files(folder: Path) -> list[str]:
    """Targets of this process's open file descriptors that lie in ``folder``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor of the listing itself, already closed
            continue
        if target.startswith(str(folder) + os.sep):
            found.append(target)
    return found


@pytest.fixture
def spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spill"
    folder.mkdir()
    monkeypatch.setattr(media, "SPILL_DIR", str(folder))
    return folder


def test_file_backed_waveform_reads_the_same_samples(tmp_path: Path, spill_dir: Path) -> None:
    path = _noise_wav(tmp_path / "noise.wav", 3.0)
    held = load_audio(path)
    spilled = load_audio(path, in_memory_seconds=0.5)
    assert held.reader is None and spilled.reader is not None
    assert spilled.num_samples == held.num_samples == len(spilled.samples)
    assert spilled.duration == held.duration
    np.testing.assert_array_equal(spilled.samples, held.samples)
    for start, stop in [(0, 1), (-50, 10), (1000, 30_000), (47_000, 10**9), (5, 5), (9, 3)]:
        np.testing.assert_array_equal(spilled.read(start, stop), held.read(start, stop))
    assert np.isfinite(spilled.read(0, 1000)).all()
    assert np.abs(spilled.read(0, spilled.num_samples)).max() <= 1.0
    np.testing.assert_array_equal(np.concatenate(list(spilled.blocks(7000))), held.samples)
    for a, b in zip(iter_16k(spilled, 0.3), iter_16k(held, 0.3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_read_piece_is_fresh_and_the_map_read_only(tmp_path: Path, spill_dir: Path) -> None:
    spilled = load_audio(_noise_wav(tmp_path / "n.wav", 1.0), in_memory_seconds=0.1)
    piece = spilled.read(0, 100)
    piece[:] = 0.0
    assert np.any(spilled.read(0, 100) != 0.0)
    with pytest.raises(ValueError):
        spilled.samples[0] = 1.0


@needs_proc
def test_temporary_file_is_nameless_and_goes_with_the_waveform(tmp_path: Path,
                                                                spill_dir: Path) -> None:
    spilled = load_audio(_noise_wav(tmp_path / "n.wav", 2.0), in_memory_seconds=0.5)
    assert list(spill_dir.iterdir()) == []
    assert len(set(_spill_files(spill_dir))) == 1  # the file and the map's own descriptor
    view = spilled.samples[:10]
    del spilled
    gc.collect()
    assert np.isfinite(view).all()  # a piece of the map handed out stays readable
    del view
    gc.collect()
    assert _spill_files(spill_dir) == []


@needs_proc
def test_temporary_file_goes_on_error(tmp_path: Path, spill_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = _noise_wav(tmp_path / "n.wav", 3.0)
    monkeypatch.setattr(media, "MAX_AUDIO_SECONDS", 1)
    with pytest.raises(AudioError, match="longer than 1 s"):
        load_audio(path, in_memory_seconds=0.2)
    gc.collect()
    assert _spill_files(spill_dir) == [] and list(spill_dir.iterdir()) == []


def test_unusable_temporary_folder_is_an_audio_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "SPILL_DIR", str(tmp_path / "missing"))
    with pytest.raises(AudioError, match="cannot keep the decoded audio.*TMPDIR"):
        load_audio(_noise_wav(tmp_path / "n.wav", 1.0), in_memory_seconds=0.1)


def test_short_recordings_stay_in_memory(tmp_path: Path) -> None:
    wave = load_audio(_noise_wav(tmp_path / "n.wav", 1.0))
    assert wave.reader is None and type(wave.samples) is np.ndarray


def test_wav_and_video_track_from_file_backed_audio(tmp_path: Path, spill_dir: Path) -> None:
    path = _noise_wav(tmp_path / "n.wav", 2.0, rate=16000, channels=1)
    held = load_audio(path)
    spilled = load_audio(path, in_memory_seconds=0.3)
    np.testing.assert_array_equal(load_audio(write_wav(tmp_path / "copy.wav", spilled)).samples,
                                  load_audio(write_wav(tmp_path / "ref.wav", held)).samples)
    for name, wave in (("a.mp4", held), ("b.mp4", spilled)):
        with VideoWriter(tmp_path / name, 32, 32, 25.0, wave) as writer:
            for _ in range(50):
                writer.write(np.zeros((32, 32, 3), np.uint8))
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_features_of_file_backed_audio_match(tmp_path: Path, spill_dir: Path) -> None:
    path = _noise_wav(tmp_path / "n.wav", 2.5, rate=22050, channels=1)
    phones = (Phone("SIL", 0.0, 2.5),)
    a = compute_features(load_audio(path, sample_rate=22050), phones)
    b = compute_features(load_audio(path, sample_rate=22050, in_memory_seconds=0.4), phones)
    for name in ("loudness", "activity", "pitch", "onsets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@needs_proc
def test_long_file_video_same_as_in_memory(tmp_path: Path, spill_dir: Path, portrait_path: Path,
                                           short_speech, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real path (``Pipeline.run``, phrase-planned in pieces) on a file-backed recording makes
    the same video as on the recording held in memory, with all its frames and its sound."""
    speech = short_speech.waveform
    seconds = 22.0
    reps = int(np.ceil(seconds * speech.sample_rate / speech.num_samples))
    long = Waveform(np.tile(speech.samples, reps)[:int(seconds * speech.sample_rate)],
                    speech.sample_rate)
    audio = write_wav(tmp_path / "long.wav", long)
    pipeline = Pipeline(Config(face=FaceConfig(size=64)))
    monkeypatch.setattr(media, "IN_MEMORY_SECONDS", 3600.0)
    held = pipeline.run(portrait_path, audio, tmp_path / "held.mp4")
    monkeypatch.setattr(media, "IN_MEMORY_SECONDS", 5.0)
    assert load_audio(audio).reader is not None
    spilled = pipeline.run(portrait_path, audio, tmp_path / "spilled.mp4")
    gc.collect()
    assert _spill_files(spill_dir) == []
    assert spilled.path.read_bytes() == held.path.read_bytes()
    info = probe_video(spilled.path)
    assert info.num_frames == spilled.num_frames == num_frames_for(seconds, 25.0)
    assert info.has_audio and abs(info.audio_duration_s - seconds) < 0.05


FIRST_RUN = r'''
import gc, os, sys
from talkinghead import Config, FaceConfig, Pipeline, media
media.SPILL_DIR, media.IN_MEMORY_SECONDS = sys.argv[1], 1.0
Pipeline(Config(face=FaceConfig(size=64))).run(sys.argv[2], sys.argv[3], sys.argv[4])
gc.collect()
held = []
for fd in os.listdir("/proc/self/fd"):
    try:
        held += [os.readlink(f"/proc/self/fd/{fd}")]
    except OSError:
        pass
print(sum(target.startswith(sys.argv[1] + os.sep) for target in held))
'''


@needs_proc
def test_the_first_run_in_a_process_lets_go_of_its_recording(tmp_path: Path, portrait_path: Path,
                                                              short_speech_wav: Path) -> None:
    """MediaPipe is imported during the first run; the error it keeps must not pin that run's
    frames, speech and spill file for the rest of the process."""
    import subprocess

    folder = tmp_path / "spill"
    folder.mkdir()
    out = subprocess.run([sys.executable, "-c", FIRST_RUN, str(folder), str(portrait_path),
                          str(short_speech_wav), str(tmp_path / "first.mp4")],
                         capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split()[-1] == "0"
