"""Sample media that ship inside dependencies (public domain), for the demo and the tests."""
from __future__ import annotations

from pathlib import Path


def demo_portrait_path() -> Path:
    """Grace Hopper's official portrait (public domain), shipped with matplotlib."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
