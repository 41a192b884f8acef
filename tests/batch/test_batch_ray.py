"""``streamdeid batch`` on a real two-node Ray cluster on this machine.

The cluster is two ``ray start`` processes (a head and a second node, one CPU each) with a
private temporary folder; they and everything they started are killed by pid at the end. The
test process joins it as the driver (its worker processes stay warm from test to test), except
where the driver itself is to be killed: that one is a ``streamdeid batch`` subprocess. One
more subprocess runs the default, a local Ray instance started by the command itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from streamdeid import anonymize_file
from streamdeid.batch import run_batch
from streamdeid.batch.manifest import MANIFEST_NAME
from streamdeid.batch.store import PARTS_DIR
from streamdeid.testing.synthetic import synthetic_clip

from batch_helpers import (
    RayCluster,
    assert_same_timing,
    frame_differences,
    start_cluster,
    worker_pids,
)
from helpers import decode_frames, probe, solid, unmasked

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (pip install 'streamdeid[cluster]'): no cluster tests"
)

CHUNK_S = 1.0  # clips have a keyframe every second


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = start_cluster()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in started.env.items():
                env.setenv(name, value)
            ray.init(address=started.address, logging_level="WARNING")
            yield started
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 4 s clips (a keyframe every second, audio on one)."""
    folder = tmp_path_factory.mktemp("ray_in")
    made = {}
    for name, size, audio in (("a.mp4", (640, 360), True), ("b.mkv", (480, 270), False)):
        TRUTH[name] = synthetic_clip(folder / name, n_frames=100, size=size, gop=25, audio=audio)
        made[name] = folder / name
    return made


TRUTH: dict[str, list[dict]] = {}  # the face boxes of each clip, filled by ``clips``
# Solid boxes: a face counts as masked when 60 % of its box changed (helpers.unmasked).
CONFIG = solid()


@pytest.fixture(scope="module")
def references(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``streamdeid run`` of each clip, in one process."""
    folder = tmp_path_factory.mktemp("ray_ref")
    for name, path in clips.items():
        anonymize_file(path, folder / name, CONFIG)
    return {name: folder / name for name in clips}


def test_without_an_address_a_local_instance_runs_the_batch(tmp_path: Path) -> None:
    # The default: Ray started inside the command for this run (and stopped with it). Ray's
    # session files go to a private folder (RAY_TMPDIR; its socket paths must stay short).
    synthetic_clip(tmp_path / "in.mkv", n_frames=12, size=(320, 180), audio=False)
    ray_tmp = Path(tempfile.mkdtemp(prefix="sdray-", dir="/tmp"))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamdeid",
                "batch",
                str(tmp_path / "in.mkv"),
                "-o",
                str(tmp_path / "out"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert "1 files (1 done, 0 done before, 0 failed; 0 chunked), 12 frames" in done.stderr
    assert len(decode_frames(str(tmp_path / "out" / "in.mkv"))) == 12


def test_a_folder_of_mixed_files_completes(
    cluster: RayCluster, clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from streamdeid.cli import main

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    synthetic_clip(folder / "long.mp4", n_frames=75, gop=25)
    synthetic_clip(folder / "sub" / "short.mov", n_frames=12, size=(320, 180), audio=False)
    (folder / "sub" / "still.png").write_bytes(_png(clips["a.mp4"]))
    (folder / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    argv = ["batch", str(folder), "-o", str(out), "--address", cluster.address]
    assert main([*argv, "--chunk-seconds", str(CHUNK_S)]) == 1  # one failed, others written
    err = capsys.readouterr().err
    assert "4 files (3 done, 0 done before, 1 failed; 1 chunked)" in err
    assert "failed: " in err and "broken.mp4" in err
    for name, frames in (("long.mp4", 75), ("sub/short.mov", 12), ("sub/still.png", 1)):
        assert len(decode_frames(str(out / name))) == frames, name
    assert not (out / "broken.mp4").exists() and not (out / PARTS_DIR).exists()
    with sqlite3.connect(out / MANIFEST_NAME) as db:
        rows = dict(db.execute("SELECT output, state FROM files").fetchall())
        chunks = db.execute("SELECT state, attempts FROM chunks").fetchall()
    assert rows == {
        "broken.mp4": "failed",
        "long.mp4": "done",
        "sub/short.mov": "done",
        "sub/still.png": "done",
    }
    assert chunks == [("done", 1)] * 3


def _png(clip: Path) -> bytes:
    import av

    with av.open(str(clip)) as c:
        frame = next(c.decode(video=0))
    import cv2

    return cv2.imencode(".png", frame.to_ndarray(format="bgr24"))[1].tobytes()


def test_a_killed_worker_is_retried_and_every_file_completes_once(
    cluster: RayCluster, clips: dict[str, Path], references: dict, tmp_path: Path
) -> None:
    killed: list[int] = []
    done = threading.Event()

    def kill_one_chunk_worker() -> None:
        while not done.is_set() and not killed:
            busy = worker_pids(cluster, "ray::run_chunk")
            if busy:
                time.sleep(0.3)  # mid-chunk
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_chunk_worker, daemon=True)
    killer.start()
    try:
        report = run_batch(list(clips.values()), tmp_path, CONFIG, chunk_seconds=CHUNK_S)
    finally:
        done.set()
        killer.join(5)
    assert killed, "no chunk worker was seen running"
    assert [f.state for f in report.files] == ["done", "done"], [f.error for f in report.files]
    assert report.submitted == sum(f.chunks for f in report.files) == 8  # each chunk once
    with sqlite3.connect(tmp_path / MANIFEST_NAME) as db:
        assert db.execute("SELECT COUNT(*), SUM(attempts) FROM files").fetchone() == (2, 2)
        assert set(db.execute("SELECT state, attempts FROM chunks")) == {("done", 1)}
    for name, clip in clips.items():
        assert_same_timing(references[name], tmp_path / name)
        original, masked = decode_frames(str(clip)), decode_frames(str(tmp_path / name))
        assert unmasked(original, masked, TRUTH[name]) == []
        # A chunk whose warm-up reaches back to the clip's start has the whole-file run's
        # masks (only the encoder's new GOP at the cut differs). One that warms up later starts
        # with a shorter track history, so its masks may differ: every face is masked in both.
        differences = frame_differences(references[name], tmp_path / name)
        from_start = [s for s in _specs(tmp_path, name) if s["warm"] == 0]
        assert len(from_start) == 3
        assert max(max(differences[s["start"] : s["end"]]) for s in from_start) < 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*clips, MANIFEST_NAME, "streamdeid-batch.json"]
    )


def _specs(out: Path, output: str) -> list[dict]:
    with sqlite3.connect(out / MANIFEST_NAME) as db:
        rows = db.execute(
            "SELECT spec FROM chunks JOIN files ON files.id = chunks.file_id "
            "WHERE files.output = ? ORDER BY idx",
            (output,),
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_resume_after_the_driver_is_killed_redoes_nothing_finished(
    cluster: RayCluster, clips: dict[str, Path], references: dict, tmp_path: Path
) -> None:
    # The driver joins by GCS address: it is the job, and the job dies with it. (Through Ray
    # Client the job would live on in the client server, waiting for the driver to reconnect.)
    out, clip = tmp_path / "out", clips["a.mp4"]  # four chunks
    config_file = tmp_path / "solid.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdeid",
            "batch",
            str(clip),
            "-o",
            str(out),
            "--address",
            cluster.address,
            "--chunk-seconds",
            str(CHUNK_S),
            "--no-progress",
            "--config",
            str(config_file),
        ],
        env={**os.environ, **cluster.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = _wait_for_done_chunks(out / MANIFEST_NAME, 2, driver)
    finally:
        driver.kill()  # SIGKILL: no cleanup at all
        _, stderr = driver.communicate(timeout=30)
    assert started, f"the driver finished no chunk: {stderr.decode()[-2000:]}"
    finished = _done_chunks(out / MANIFEST_NAME)  # what it finished before it died
    assert 2 <= len(finished) < 4, "the driver finished the file before it was killed"
    resumed = run_batch([clip], out, CONFIG, chunk_seconds=CHUNK_S, resume=True)
    assert [f.state for f in resumed.files] == ["done"]
    with sqlite3.connect(out / MANIFEST_NAME) as db:
        after = {
            (f, i): (s, a, h)
            for f, i, s, a, h in db.execute(
                "SELECT file_id, idx, state, attempts, sha256 FROM chunks"
            )
        }
    for key, (attempts, digest) in finished.items():
        assert after[key][1:] == (attempts, digest), f"chunk {key} was done again"
    assert len(after) == 4 and resumed.submitted == len(after) - len(finished)
    assert_same_timing(references["a.mp4"], out / "a.mp4")


def _wait_for_done_chunks(
    manifest: Path, count: int, driver: subprocess.Popen, timeout_s: float = 90
) -> dict[tuple[int, int], tuple[int, str]]:
    """Chunks done once ``count`` are (polled read-only), or {} if the driver ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and driver.poll() is None:
        done = _done_chunks(manifest) if manifest.exists() else {}
        if len(done) >= count:
            return done
        time.sleep(0.1)
    return {}


def _done_chunks(manifest: Path) -> dict[tuple[int, int], tuple[int, str]]:
    """(file id, chunk) -> (attempts, SHA-256) of the chunks marked done, read-only."""
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT file_id, idx, attempts, sha256 FROM chunks WHERE state = 'done'"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {(f, i): (a, h) for f, i, a, h in rows}


def test_a_face_crossing_a_chunk_boundary_is_masked_on_every_frame(
    cluster: RayCluster, tmp_path: Path
) -> None:
    # 0.5 s of warm-up (with the tracker's 29 frames): chunks 2 and 3 warm up from frames 20
    # and 44, inside the clip.
    clip = tmp_path / "faces.mp4"
    gt = synthetic_clip(clip, n_frames=100, gop=25)
    out = tmp_path / "out"
    # The frame counts below follow a detector on every 4th frame, whatever the default is.
    config = solid(**{"pipeline.detect_every": 4})
    report = run_batch([clip], out, config, chunk_seconds=CHUNK_S, warmup_seconds=0.5)
    (outcome,) = report.files
    chunks = outcome.stats["chunks"]
    assert outcome.chunks == 4
    assert [c["frames_fed"] - c["frames"] for c in chunks] == [
        4,  # tail: frames 25 to 28, up to the next detector run
        25 + 3,  # warm-up from 0 (the clip's start), tail to 52
        30 + 2,  # warm-up from 20 (75 - 29 tracker frames, on the schedule), tail to 76
        31,  # warm-up from 44, no tail at the end of the clip
    ]
    assert all(gt[i]["boxes"] for i in (24, 25, 49, 50, 74, 75))  # faces across each cut
    original, masked = decode_frames(str(clip)), decode_frames(str(out / "faces.mp4"))
    assert unmasked(original, masked, gt) == []
    assert probe(str(out / "faces.mp4"))["pts"] == probe(str(clip))["pts"]
    # Each chunk's first frames had a detector run before them (in the warm-up): none was
    # masked whole, as none is in the whole-file run.
    assert [c["frames_masked_whole"] for c in chunks] == [0, 0, 0, 0]
