"""The Docker image builds and runs streamdeid as a non-root user (only where Docker runs).

Docker is optional: CI builds the image when a daemon answers, and skips with the reason
otherwise, so the test suite never depends on it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TAG = "streamdeid-test:latest"


def _docker_reason() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    info = subprocess.run(
        ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
    )
    if info.returncode != 0:
        return f"no Docker daemon answers ({(info.stderr.strip().splitlines() or ['?'])[-1]})"
    return None


def test_image_builds_and_runs_the_sample_as_non_root(tmp_path: Path) -> None:
    reason = _docker_reason()
    if reason:
        pytest.skip(f"Docker image not built: {reason}")
    built = subprocess.run(
        ["docker", "build", "-t", TAG, str(REPO)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", TAG, "-u"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert user.stdout.strip() not in ("", "0"), user.stdout + user.stderr
    shutil.copy(REPO / "samples" / "astronaut_pan.mp4", tmp_path / "in.mp4")
    tmp_path.chmod(0o777)  # the container's user (uid 1000) writes the output here
    ran = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{tmp_path}:/data", TAG, "run", "in.mp4", "-o", "out.mp4"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (tmp_path / "out.mp4").stat().st_size > 0
