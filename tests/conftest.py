from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STREAMDEID_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The research data set beside the repo; absent in users' clones, present in CI."""
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip(
            f"real test data not found at {SHARED_DATA} (set STREAMDEID_DATA); "
            "only CI and the team have it"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A 50-frame 640x360 clip with two real faces moving, scaling, leaving and re-entering."""
    from streamdeid.testing.synthetic import synthetic_clip

    path = tmp_path_factory.mktemp("synthetic") / "two_faces.mp4"
    gt = synthetic_clip(path, n_frames=50, size=(640, 360), seed=0, audio=True)
    return path, gt


@pytest.fixture(scope="session")
def sample_clip() -> tuple[Path, list[dict]]:
    import json

    clip = REPO / "samples" / "astronaut_pan.mp4"
    gt = json.loads((REPO / "samples" / "astronaut_pan.json").read_text())["frames"]
    return clip, gt
