"""The batch driver without Ray: tasks run in this process (batch_helpers.LocalExecutor).

What the cluster adds (workers that die, a driver that is killed) is in test_batch_ray.py; here
are the rules that do not need it: a chunked video is the whole-file run's video, resume skips
what is done, a chunk that does not match its plan sends its file whole, a failing file is
listed and the others finish, reversible files get their sidecar, and nothing is left
half-written.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace
from pathlib import Path

import av
import cv2
import pytest

from streamdeid import anonymize_file
from streamdeid.batch import run_batch
from streamdeid.batch.manifest import MANIFEST_NAME, Manifest
from streamdeid.batch.plan import plan_chunks
from streamdeid.batch.runner import REPORT_NAME
from streamdeid.batch.store import PARTS_DIR, join_atomic
from streamdeid.batch.work import ChunkTask, run_chunk
from streamdeid.config import Config
from streamdeid.errors import BatchError, ChunkMismatchError, ConfigError, Interrupted
from streamdeid.io.chunk_source import probe_packets
from streamdeid.testing.sprites import load_sample_faces
from streamdeid.testing.synthetic import synthetic_clip

from batch_helpers import LocalExecutor, assert_same_timing, frame_differences


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 25 fps with a keyframe every second: three 1 s chunks, audio kept."""
    path = tmp_path_factory.mktemp("batch_clip") / "clip.mp4"
    synthetic_clip(path, n_frames=75, size=(640, 360), gop=25)
    return path


@pytest.fixture(scope="module")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``streamdeid run`` of the clip, in one process."""
    out = tmp_path_factory.mktemp("batch_ref") / "clip.mp4"
    anonymize_file(clip, out, Config())
    return out


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_chunked_video_is_the_whole_file_video(clip: Path, reference: Path, tmp_path: Path):
    executor, seen = LocalExecutor(), []
    report = run_batch(
        [clip], tmp_path, chunk_seconds=1.0, executor=executor, progress=lambda p: seen.append(p)
    )
    (outcome,) = report.files
    assert (outcome.state, outcome.chunks, outcome.stats["frames"]) == ("done", 3, 75)
    last = seen[-1]
    assert (last.files_done, last.chunks_done, last.chunks_total) == (1, 3, 3)
    assert last.frames_done == last.frames_total == 75
    assert executor.submitted == [(1, 0), (1, 1), (1, 2)]
    assert_same_timing(reference, tmp_path / "clip.mp4")
    assert max(frame_differences(reference, tmp_path / "clip.mp4")) < 3.0
    assert files_in(tmp_path) == sorted(["clip.mp4", MANIFEST_NAME, REPORT_NAME])  # no parts left
    saved = json.loads((tmp_path / REPORT_NAME).read_text())
    assert saved["totals"]["frames"] == 75 and len(saved["files"][0]["stats"]["chunks"]) == 3


def test_resume_skips_finished_chunks_and_files(clip: Path, reference: Path, tmp_path: Path):
    other = tmp_path / "in" / "short.mkv"
    other.parent.mkdir()
    synthetic_clip(other, n_frames=20, size=(320, 180), audio=False)
    out, stop = tmp_path / "out", threading.Event()

    def stop_after_first_chunk(progress) -> None:
        if progress.chunks_done >= 1:
            stop.set()

    with pytest.raises(Interrupted, match="--resume"):
        run_batch(
            [clip, other],
            out,
            chunk_seconds=1.0,
            executor=LocalExecutor(),
            progress=stop_after_first_chunk,
            stop=stop,
        )
    second = LocalExecutor()
    report = run_batch([clip, other], out, chunk_seconds=1.0, executor=second, resume=True)
    assert [f.state for f in report.files] == ["done", "done"]
    assert (1, 0) not in second.submitted and report.submitted == len(second.submitted)
    with Manifest.open(out, _fingerprint_of(out), resume=True) as m:
        chunks = m.chunks(1)
        assert [c.attempts for c in chunks] == [1, 1, 1]
    assert_same_timing(reference, out / "clip.mp4")
    third = LocalExecutor()
    again = run_batch([clip, other], out, chunk_seconds=1.0, executor=third, resume=True)
    assert third.submitted == [] and [f.state for f in again.files] == ["skipped", "skipped"]


def _fingerprint_of(out: Path) -> str:
    import sqlite3

    with sqlite3.connect(out / MANIFEST_NAME) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()[0]


def test_resume_with_another_config_is_refused(clip: Path, tmp_path: Path) -> None:
    run_batch([clip], tmp_path, chunk_seconds=1.0, executor=LocalExecutor())
    with pytest.raises(ConfigError, match="--resume"):
        run_batch([clip], tmp_path, chunk_seconds=1.0, executor=LocalExecutor())
    with pytest.raises(ConfigError, match="expected the config"):
        run_batch([clip], tmp_path, chunk_seconds=2.0, executor=LocalExecutor(), resume=True)


def test_a_chunk_that_misses_its_plan_sends_the_file_whole(clip: Path, reference: Path, tmp_path):
    def mismatch(key, task):
        if key[1] == 1:
            raise ChunkMismatchError("chunk 1: expected frame 25 at pts 12800, got 13312")
        return None

    executor = LocalExecutor(mismatch)
    report = run_batch([clip], tmp_path, chunk_seconds=1.0, executor=executor)
    (outcome,) = report.files
    assert (outcome.state, outcome.chunks) == ("done", 0)
    assert executor.submitted[-1] == (1, -1)
    assert_same_timing(reference, tmp_path / "clip.mp4")
    assert not (tmp_path / PARTS_DIR).exists()


def test_a_failing_file_is_listed_and_the_others_finish(clip: Path, tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"not a video")
    image = tmp_path / "in" / "still.png"
    cv2.imwrite(str(image), load_sample_faces()[0].image)
    report = run_batch(
        [clip, tmp_path / "in"], tmp_path / "out", chunk_seconds=1.0, executor=LocalExecutor()
    )
    states = {Path(f.input).name: (f.state, f.error) for f in report.files}
    assert states["clip.mp4"][0] == "done" and states["still.png"][0] == "done"
    assert states["broken.mp4"][0] == "failed" and "broken.mp4" in states["broken.mp4"][1]
    assert report.totals()["failed"] == 1 and "1 failed" in report.summary()
    assert (tmp_path / "out" / "still.png").exists()


def test_reversible_files_run_whole_with_their_sidecar(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamdeid.crypto import generate_keypair, keyfile
    from streamdeid.crypto.reader import SidecarReader
    from streamdeid.reveal import list_tracks

    monkeypatch.setattr(keyfile, "KDF_COST", keyfile.ScryptCost(log2_n=10, r=8, p=1))
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"a long test passphrase")
    config = Config().override(
        {"reversible.recipients": [str(tmp_path / "r.pub")], "reversible.enabled": True}
    )
    out = tmp_path / "out"
    report = run_batch([clip], out, config, chunk_seconds=1.0, executor=LocalExecutor())
    (outcome,) = report.files
    assert (outcome.state, outcome.chunks) == ("done", 0)
    assert (out / "clip.mp4.sdeid").exists() and list_tracks(out / "clip.mp4")
    with av.open(str(out / "clip.mp4")) as c:
        comment = c.metadata.get("comment", "")
    assert SidecarReader(out / "clip.mp4.sdeid").recording_id in comment


def test_existing_outputs_are_not_replaced(clip: Path, tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="exists"):
        run_batch([clip], tmp_path, executor=LocalExecutor())
    assert (tmp_path / "clip.mp4").read_bytes() == b"precious"


def test_a_join_that_fails_its_check_leaves_no_output(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="expected 99 frames"):
        join_atomic([clip], tmp_path / "joined.mp4", audio_from=str(clip), audio="copy", frames=99)
    assert files_in(tmp_path) == []


def test_without_ray_the_command_names_the_extra(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from streamdeid.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["batch", str(clip), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'streamdeid[cluster]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_only_the_cluster_module_imports_ray() -> None:
    package = Path(__file__).resolve().parents[2] / "streamdeid"
    importing = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if any(
            line.strip().startswith(("import ray", "from ray"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    )
    assert importing == ["batch/cluster.py"]


def test_without_warm_up_a_chunk_masks_its_first_frames_whole(clip: Path) -> None:
    # Control for the warm-up: chunk 1 starts on frame 25, between two detector runs (every
    # 4th frame). With its warm-up it has the run on frame 24 before it; without, the frames up
    # to the next run have none, and look-ahead masks them whole rather than trust nothing.
    every = 4  # the plan and the run must share the schedule, whatever the default is
    packets = probe_packets(clip)
    planned = plan_chunks(packets, 1.0, detect_every=every).chunks[1]
    assert (planned.start, planned.warm) == (25, 0)
    config = Config().override({"pipeline.detect_every": every}).model_dump(mode="json")
    warm = run_chunk(ChunkTask(str(clip), ".mp4", config, planned)).stats
    cold = run_chunk(ChunkTask(str(clip), ".mp4", config, replace(planned, warm=25))).stats
    assert warm["frames_masked_whole"] == 0
    assert cold["frames_masked_whole"] == 3  # frames 25, 26 and 27
