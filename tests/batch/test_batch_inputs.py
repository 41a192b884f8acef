"""INPUT arguments to jobs: files, recursive folders, lists of paths and URLs (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdeid.batch.inputs import expand_inputs
from streamdeid.errors import ConfigError, InputNotFoundError, NotAVideoError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_files_folders_and_lists(tmp_path: Path) -> None:
    a = touch(tmp_path / "in" / "a.mp4")
    touch(tmp_path / "in" / "sub" / "b.MKV")
    touch(tmp_path / "in" / "sub" / "notes.txt")  # in a folder: not media, skipped
    touch(tmp_path / "in" / ".hidden" / "c.mp4")
    touch(tmp_path / "in" / "out" / "old.mp4")  # the output folder inside the input
    d = touch(tmp_path / "elsewhere" / "d.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# cameras\n\n{d}\nin/a.mp4\nhttps://example.org/v/cam1.mp4?t=1\nrtsp://cam/stream\n"
    )
    jobs = expand_inputs([str(tmp_path / "in"), str(a), str(listing)], tmp_path / "in" / "out")
    assert [(Path(j.input).name if not j.is_url else j.input, j.output) for j in jobs] == [
        ("a.mp4", "a.mp4"),
        ("b.MKV", "sub/b.MKV"),
        ("d.jpg", "d.jpg"),
        ("https://example.org/v/cam1.mp4?t=1", "cam1.mp4"),
        ("rtsp://cam/stream", "stream.mp4"),
    ]
    assert all(Path(j.input).is_absolute() for j in jobs if not j.is_url)


def test_two_inputs_for_one_output_are_refused(tmp_path: Path) -> None:
    one, two = touch(tmp_path / "x" / "a.mp4"), touch(tmp_path / "y" / "a.mp4")
    with pytest.raises(ConfigError, match=r"would both be written to 'a\.mp4'"):
        expand_inputs([str(one), str(two)], tmp_path / "out")


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"nope\.mp4"):
        expand_inputs([str(tmp_path / "nope.mp4")], tmp_path / "out")


def test_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAVideoError, match="found none"):
        expand_inputs([str(tmp_path / "empty")], tmp_path / "out")


def test_a_list_names_media_not_other_lists(tmp_path: Path) -> None:
    inner = tmp_path / "inner.txt"
    inner.write_text("a.mp4\n")
    outer = tmp_path / "outer.txt"
    outer.write_text(f"{inner}\n")
    with pytest.raises(NotAVideoError, match="expected a video or image in the list"):
        expand_inputs([str(outer)], tmp_path / "out")
