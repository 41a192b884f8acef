"""The batch manifest: states, attempts, plans kept for resume, refusals (SQLite, no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdeid.batch.manifest import MANIFEST_NAME, Manifest
from streamdeid.batch.plan import ChunkSpec
from streamdeid.errors import ConfigError


def spec(i: int) -> ChunkSpec:
    return ChunkSpec(i, 10 * i, 10 * i + 10, max(0, 10 * i - 4), 0, 0, 10 * i + 11, i, i + 9)


def test_files_and_chunks_keep_state_attempts_stats_and_hash(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, "cfg-a", resume=False) as m:
        row = m.add_file("/in/a.mp4", "a.mp4")
        assert (row.state, row.attempts) == ("pending", 0)
        assert m.add_file("/in/a.mp4", "a.mp4").id == row.id  # once per input
        m.set_chunks(row.id, [spec(0), spec(1)])
        m.mark_chunk(row.id, 0, "running", submitted=True)
        m.mark_chunk(row.id, 0, "done", stats={"frames": 10}, sha256="ab")
        m.mark_file(row.id, "failed", error="chunk 1: boom")
    with Manifest.open(tmp_path, "cfg-a", resume=True) as m:
        (f,) = m.files()
        assert (f.state, f.chunks, f.error) == ("failed", 2, "chunk 1: boom")
        first, second = m.chunks(f.id)
        assert (first.state, first.attempts, first.stats, first.sha256) == (
            "done",
            1,
            {"frames": 10},
            "ab",
        )
        assert first.spec == spec(0) and second.state == "pending"
        m.set_chunks(f.id, [spec(0)])  # a plan is kept once made
        assert len(m.chunks(f.id)) == 2
        m.drop_chunks(f.id)
        assert m.chunks(f.id) == [] and m.file(f.id).chunks == 0


def test_an_existing_manifest_needs_resume(tmp_path: Path) -> None:
    Manifest.open(tmp_path, "cfg-a", resume=False).close()
    with pytest.raises(ConfigError, match="--resume"):
        Manifest.open(tmp_path, "cfg-a", resume=False)


def test_resume_with_another_config_is_refused(tmp_path: Path) -> None:
    Manifest.open(tmp_path, "cfg-a", resume=False).close()
    with pytest.raises(ConfigError, match="expected the config and --chunk-seconds"):
        Manifest.open(tmp_path, "cfg-b", resume=True)


def test_resume_without_a_manifest_starts_one(tmp_path: Path) -> None:
    Manifest.open(tmp_path, "cfg-a", resume=True).close()
    assert (tmp_path / MANIFEST_NAME).exists()


def test_unknown_columns_are_refused(tmp_path: Path) -> None:
    with Manifest.open(tmp_path, "x", resume=False) as m:
        row = m.add_file("/in/a.mp4", "a.mp4")
        with pytest.raises(ValueError, match="unknown manifest column"):
            m.mark_file(row.id, "done", attempts=7)
