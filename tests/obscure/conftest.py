"""Fixtures of the surrogate tests, which need faces of more than k different people."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def crowd_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A 24-frame 960x540 clip of eight different people (still camera) and its ground truth."""
    pytest.importorskip("skimage")
    from streamdeid.testing.crowd import crowd_clip as write

    path = tmp_path_factory.mktemp("crowd") / "crowd.mp4"
    return path, write(path, 24, (960, 540))
