"""Keyless parsing: every length read from the file is bounded before it sizes an allocation."""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest
from crypto_helpers import AUDIT, chunk_spans, header_size, small_sidecar
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import FormatError, SidecarReader, TamperedError, TruncatedError, parse
from streamdeid.crypto import format as fmt
from streamdeid.errors import StreamDeidError

GIB = 1 << 30
READ_LIMIT = 1 << 20


class _GuardedFile:
    """A sidecar file that fails the test if asked for a whole-file read or more than 1 MiB."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0 or n > READ_LIMIT:
            raise AssertionError(f"read({n}) of an unbounded or huge length")
        return self._f.read(n)

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self) -> _GuardedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    real = parse.open_sidecar_file
    monkeypatch.setattr(parse, "open_sidecar_file", lambda path: _GuardedFile(real(path)))


def test_sparse_gib_tail_is_counted_not_read(
    tmp_path: Path, alice: X25519PrivateKey, guarded: None
) -> None:
    path = tmp_path / "s.sdeid"
    small_sidecar(path, [alice])
    size = path.stat().st_size
    os.truncate(path, size + GIB)  # sparse: no disk used, but 1 GiB if read
    reader = SidecarReader(path)
    tracemalloc.start()
    try:
        tracks = reader.tracks()
        end = list(parse.scan_chunks(path, reader.header_size))[-1]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [t.track_id for t in tracks] == [0, 1, 7]
    assert isinstance(end, parse.EndChunk) and end.trailing == GIB
    assert peak < 8 << 20
    reader.unlock(alice)
    with pytest.raises(TamperedError, match=f"followed by {GIB} more bytes"):
        list(reader.records(audit_ctx=AUDIT))


def test_chunk_length_beyond_the_file_is_not_allocated(
    tmp_path: Path, alice: X25519PrivateKey, guarded: None
) -> None:
    path = tmp_path / "s.sdeid"
    small_sidecar(path, [alice])
    data = bytearray(path.read_bytes())
    _, start, _ = chunk_spans(bytes(data), header_size(1))[0]
    struct.pack_into(">I", data, start + 1, fmt.MAX_CHUNK_BODY)
    path.write_bytes(bytes(data))
    with pytest.raises(TruncatedError, match=f"ends inside a record at byte {start}") as info:
        list(parse.scan_chunks(path, header_size(1)))
    assert info.value.records_read == 0


def test_recipient_count_beyond_the_file_is_not_allocated(
    tmp_path: Path, alice: X25519PrivateKey, guarded: None
) -> None:
    path = tmp_path / "s.sdeid"
    small_sidecar(path, [alice])
    data = bytearray(path.read_bytes())
    struct.pack_into(">H", data, fmt.HEADER_FIXED.size - 2, 0xFFFF)
    path.write_bytes(bytes(data))
    with pytest.raises(TruncatedError, match="ends inside its header"):
        SidecarReader(path)


def test_zero_time_base_in_a_record_is_a_format_error(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    path = tmp_path / "s.sdeid"
    small_sidecar(path, [alice])
    data = bytearray(path.read_bytes())
    _, start, _ = chunk_spans(bytes(data), header_size(1))[0]
    tb_den_at = start + fmt.CHUNK_HEAD.size + struct.calcsize(">QqI")
    struct.pack_into(">I", data, tb_den_at, 0)
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="record seq 0: expected a time base") as info:
        SidecarReader(path).tracks()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "box",
    [(5, 0, 5, 4), (6, 0, 2, 4), (0, 4, 3, 2), (-1, 0, 3, 4), (0, 0, 9, 4), (0, 0, 3, 7)],
    ids=["empty", "x-inverted", "y-inverted", "negative", "too-wide", "too-tall"],
)
def test_check_box_refuses_boxes_that_do_not_fit(box: tuple[int, int, int, int]) -> None:
    with pytest.raises(FormatError, match=r"expected a box with .* <= 8 .* <= 6, got") as info:
        parse.check_box(box, 8, 6)
    assert isinstance(info.value, StreamDeidError) and "\n" not in str(info.value)


def test_check_box_returns_a_fitting_box_as_ints() -> None:
    assert parse.check_box((0, 0, 8, 6), 8, 6) == (0, 0, 8, 6)


@pytest.mark.parametrize(("num", "den"), [(1, 0), (0, 1), (-1, 25), (1, 1 << 32)])
def test_check_time_base_refuses_what_a_record_cannot_hold(num: int, den: int) -> None:
    with pytest.raises(FormatError, match=f"got {num}/{den}"):
        parse.check_time_base(num, den)
    assert parse.check_time_base(1, 90000) * 90000 == 1
