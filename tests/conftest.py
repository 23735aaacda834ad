"""Shared fixtures: speech synthesized in code, the portrait matplotlib ships, shared data."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    from talkinghead.samples import demo_portrait_path

    return demo_portrait_path()


@pytest.fixture(scope="session")
def short_speech():
    """About 2.5 s of synthetic speech with exact phone timings (eSpeak NG)."""
    from talkinghead.audio.tts import synthesize

    return synthesize("Bob met a papa bear by the mall.")


@pytest.fixture(scope="session")
def short_speech_wav(tmp_path_factory, short_speech) -> Path:
    """The same speech as a 16-bit wav file."""
    from talkinghead.media import write_wav

    return write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", short_speech.waveform)
