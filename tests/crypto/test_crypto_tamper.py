"""Every modification of a sidecar must end in a CryptoError, never in wrong pixels or a crash."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from crypto_helpers import (
    Expected,
    assert_matches,
    chunk_spans,
    header_size,
    read_all,
    small_sidecar,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import (
    FormatError,
    RevealedRegion,
    SidecarReader,
    TamperedError,
    TruncatedError,
)
from streamdeid.crypto import format as fmt


def _assert_prefix(got: Sequence[RevealedRegion], expected: Sequence[Expected]) -> None:
    """Whatever was yielded before an error is authentic: a prefix of the written regions."""
    assert_matches(got, expected[: len(got)])


@pytest.fixture
def small(
    tmp_path: Path, alice: X25519PrivateKey, bob: X25519PrivateKey
) -> tuple[bytes, list[Expected]]:
    expected = small_sidecar(tmp_path / "orig.sdeid", [alice, bob])
    return (tmp_path / "orig.sdeid").read_bytes(), expected


def test_every_single_byte_flip_is_detected(
    tmp_path: Path, alice: X25519PrivateKey, small: tuple[bytes, list[Expected]]
) -> None:
    data, expected = small
    path = tmp_path / "flipped.sdeid"
    undetected = []
    for pos in range(len(data)):
        for mask in (0x01, 0xFF):
            flipped = bytearray(data)
            flipped[pos] ^= mask
            path.write_bytes(flipped)
            got, error = read_all(path, alice)
            if error is None:
                undetected.append((pos, mask))
            _assert_prefix(got, expected)
    assert not undetected, f"flips not detected at (offset, xor): {undetected}"


def test_grant_holder_detects_flips_in_header_own_records_and_never_misreveals(
    tmp_path: Path, alice: X25519PrivateKey, small: tuple[bytes, list[Expected]]
) -> None:
    data, expected = small
    reader = SidecarReader(tmp_path / "orig.sdeid")
    reader.unlock(alice)
    grant = reader.make_grant(7)
    mine = [e for e in expected if e.track_id == 7]
    spans = chunk_spans(data, header_size(2))
    must_detect = set(range(header_size(2)))
    for (_, start, end), e in zip(spans, expected, strict=False):
        if e.track_id == 7:
            # The record MAC (last bytes) needs the content key: a grant cannot check it.
            must_detect.update(range(start, end - fmt.RECORD_MAC_SIZE))
    path = tmp_path / "flipped.sdeid"
    undetected = []
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        path.write_bytes(flipped)
        got, error = read_all(path, grant=grant)
        _assert_prefix(got, mine)
        if error is None and pos in must_detect:
            undetected.append(pos)
    assert not undetected


def test_swapped_duplicated_removed_and_appended_records_are_detected(
    tmp_path: Path, alice: X25519PrivateKey, small: tuple[bytes, list[Expected]]
) -> None:
    data, expected = small
    spans = chunk_spans(data, header_size(2))
    rec = [data[s:e] for _, s, e in spans[:-1]]
    head, end = data[: spans[0][1]], data[spans[-1][1] :]
    assert spans[-1][0] == fmt.CHUNK_END and len(rec) == 6
    variants = {
        "swap": head + rec[0] + rec[2] + rec[1] + b"".join(rec[3:]) + end,
        "swap across frames": head + b"".join(rec[3:]) + b"".join(rec[:3]) + end,
        "duplicate": head + rec[0] + rec[1] + rec[1] + b"".join(rec[2:]) + end,
        "replay at the end": head + b"".join(rec) + rec[0] + end,
        "remove middle": head + rec[0] + b"".join(rec[2:]) + end,
        "remove last": head + b"".join(rec[:-1]) + end,
        "end marker twice": head + b"".join(rec) + end + end,
        "end marker early": head + b"".join(rec[:3]) + end + b"".join(rec[3:]),
    }
    for name, variant in variants.items():
        path = tmp_path / f"{name}.sdeid"
        path.write_bytes(variant)
        got, error = read_all(path, alice)
        assert isinstance(error, TamperedError), name
        _assert_prefix(got, expected)
        if name.startswith(("swap", "duplicate", "replay", "remove middle")):
            assert error.seq is not None and error.pts is not None, name
            assert f"seq {error.seq}" in str(error) and f"pts {error.pts}" in str(error)


def test_records_of_another_recording_are_detected(
    tmp_path: Path,
    alice: X25519PrivateKey,
    bob: X25519PrivateKey,
    small: tuple[bytes, list[Expected]],
) -> None:
    data, expected = small
    # Same keys, same frames and boxes: only the recording differs.
    small_sidecar(tmp_path / "other.sdeid", [alice, bob])
    other = (tmp_path / "other.sdeid").read_bytes()
    spans = chunk_spans(data, header_size(2))
    ospans = chunk_spans(other, header_size(2))

    def chunk(buf: bytes, sp: list[tuple[int, int, int]], i: int) -> bytes:
        return buf[sp[i][1] : sp[i][2]]

    body = data[: spans[-1][1]]
    variants = {
        "inserted": body + chunk(other, ospans, 0) + chunk(data, spans, -1),
        "replaced": data[: spans[2][1]] + chunk(other, ospans, 2) + data[spans[2][2] :],
        "appended": data + chunk(other, ospans, 0),
        "foreign end marker": body + chunk(other, ospans, -1),
        "foreign header": other[: header_size(2)] + data[header_size(2) :],
    }
    for name, variant in variants.items():
        path = tmp_path / f"{name}.sdeid"
        path.write_bytes(variant)
        got, error = read_all(path, alice)
        assert isinstance(error, TamperedError), name
        _assert_prefix(got, expected)


def test_truncation_at_every_offset_yields_the_intact_prefix(
    tmp_path: Path, alice: X25519PrivateKey, small: tuple[bytes, list[Expected]]
) -> None:
    data, expected = small
    spans = chunk_spans(data, header_size(2))
    path = tmp_path / "cut.sdeid"
    for cut in range(spans[-3][1], len(data)):  # the last two records and the end marker
        path.write_bytes(data[:cut])
        got, error = read_all(path, alice)
        intact = sum(1 for kind, _, end in spans if kind == fmt.CHUNK_REGION and end <= cut)
        assert isinstance(error, TruncatedError), cut
        assert error.records_read == intact
        assert_matches(got, expected[:intact])
        assert str(intact) in str(error) and "\n" not in str(error)


def test_truncation_inside_the_header_is_a_clean_error(
    tmp_path: Path, alice: X25519PrivateKey, small: tuple[bytes, list[Expected]]
) -> None:
    data, _ = small
    path = tmp_path / "cut.sdeid"
    for cut in range(header_size(2)):
        path.write_bytes(data[:cut])
        got, error = read_all(path, alice)
        assert got == []
        assert isinstance(error, FormatError if cut == 0 else TruncatedError), cut


def test_not_a_sidecar_and_unknown_version(tmp_path: Path, alice: X25519PrivateKey) -> None:
    (tmp_path / "video.mp4").write_bytes(b"\0\0\0\x20ftypisom" + bytes(100))
    with pytest.raises(FormatError, match="expected a streamdeid sidecar"):
        SidecarReader(tmp_path / "video.mp4")
    small_sidecar(tmp_path / "s.sdeid", [alice])
    data = bytearray((tmp_path / "s.sdeid").read_bytes())
    for version in (1, fmt.VERSION + 1):  # 1: records forgeable by grant holders, refused
        data[len(fmt.MAGIC) + 1] = version
        (tmp_path / "other.sdeid").write_bytes(bytes(data))
        with pytest.raises(FormatError, match=f"expected sidecar format version {fmt.VERSION}"):
            SidecarReader(tmp_path / "other.sdeid")
