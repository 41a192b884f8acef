"""Issue 12: a grant holder cannot forge records, and ciphertext lengths fall in padded buckets."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from crypto_helpers import (
    AUDIT,
    Expected,
    assert_matches,
    forge_chunk,
    header_size,
    read_all,
    region_chunks,
    textured_frame,
    write_sidecar,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streamdeid import anonymize_file
from streamdeid.config import Config
from streamdeid.crypto import (
    SidecarReader,
    TamperedError,
    TrackGrant,
    generate_keypair,
    load_private_key,
)
from streamdeid.crypto import format as fmt
from streamdeid.crypto.codec import encode
from streamdeid.crypto.parse import EndChunk, RegionChunk, scan_chunks
from streamdeid.types import Region

from helpers import ScriptedDetector

FRAMES = 10
TRACK = 2  # the granted track, as in the issue


@pytest.fixture
def recording(tmp_path: Path, alice: X25519PrivateKey) -> tuple[Path, list[Expected], TrackGrant]:
    """Ten frames, tracks 1 and 2 and an untracked region; plus the grant for track 2."""
    frames = [
        (
            3000 * i,
            textured_frame(i, 48, 64),
            [Region((2, 2, 18, 20), 1), Region((30, 10, 50, 34), TRACK), Region((0, 40, 5, 48))],
        )
        for i in range(FRAMES)
    ]
    path = tmp_path / "rec.sdeid"
    expected = write_sidecar(path, [alice], frames)
    reader = SidecarReader(path)
    reader.unlock(alice)
    return path, expected, reader.make_grant(TRACK)


def _rebuild(path: Path, replace: dict[int, bytes | None], out: Path) -> None:
    """Copy a sidecar, replacing (bytes) or dropping (None) the chunks at the given indices."""
    data = path.read_bytes()
    hsize = header_size(1)
    chunks = list(scan_chunks(path, hsize))
    starts = [c.offset for c in chunks] + [len(data)]
    parts = [data[:hsize]]
    for i in range(len(chunks)):
        new = replace.get(i, data[starts[i] : starts[i + 1]])
        if new is not None:
            parts.append(new)
    out.write_bytes(b"".join(parts))


def _forge_track(path: Path, grant: TrackGrant, mac_of: str) -> dict[int, bytes | None]:
    """Re-encrypt every record of the granted track with new pixels and a moved box."""
    forged: dict[int, bytes | None] = {}
    for i, chunk in enumerate(region_chunks(path, 1)):
        f = chunk.fields
        if f.track_id != grant.track_id:
            continue
        fields = dataclasses.replace(f, x1=f.x1 + 4, x2=f.x2 + 4)
        pixels = np.full((f.y2 - f.y1, f.x2 - f.x1, 3), 200, np.uint8)
        mac = {
            "track key": None,
            "copied": fmt.split_sealed(chunk.ciphertext)[1],
            "random": os.urandom(fmt.RECORD_MAC_SIZE),
        }[mac_of]
        forged[i] = forge_chunk(
            grant.recording_id, grant.key, fields, encode(pixels, False)[1], mac
        )
    return forged


@pytest.mark.parametrize("mac_of", ["track key", "copied", "random"])
def test_grant_holder_cannot_forge_records_for_a_full_key_reader(
    tmp_path: Path,
    alice: X25519PrivateKey,
    recording: tuple[Path, list[Expected], TrackGrant],
    mac_of: str,
) -> None:
    path, expected, grant = recording
    forged = _forge_track(path, grant, mac_of)
    assert len(forged) == FRAMES
    out = tmp_path / "forged.sdeid"
    _rebuild(path, forged, out)

    got, error = read_all(out, alice)
    first = min(forged)
    first_pts = expected[first].pts
    assert isinstance(error, TamperedError)
    assert (error.seq, error.pts) == (first, first_pts)
    message = str(error)
    assert "\n" not in message and str(out) in message
    assert f"record seq {first} (pts {first_pts}, track {TRACK}" in message
    assert "record MAC" in message
    assert_matches(got, expected[:first])  # only the authentic records before it


def test_grant_reader_cannot_tell_a_forgery_by_a_holder_of_the_same_grant(
    tmp_path: Path, recording: tuple[Path, list[Expected], TrackGrant]
) -> None:
    """The documented boundary: GCM under a shared track key is all a grant reader can check."""
    path, expected, grant = recording
    got, error = read_all(path, grant=grant)
    assert error is None
    assert_matches(got, [e for e in expected if e.track_id == TRACK])  # the grant still reads

    out = tmp_path / "forged.sdeid"
    _rebuild(path, _forge_track(path, grant, "track key"), out)
    got, error = read_all(out, grant=grant)
    assert error is None and len(got) == FRAMES
    assert all((g.pixels == 200).all() for g in got)


def test_removed_or_reordered_records_are_detected_even_with_the_grant_holders_help(
    tmp_path: Path,
    alice: X25519PrivateKey,
    recording: tuple[Path, list[Expected], TrackGrant],
) -> None:
    path, expected, grant = recording
    chunks = region_chunks(path, 1)
    mine = [i for i, c in enumerate(chunks) if c.fields.track_id == TRACK]
    out = tmp_path / "edited.sdeid"

    # Remove one of the track's records: the next record's MACed seq exposes the gap.
    removed = mine[3]
    _rebuild(path, {removed: None}, out)
    got, error = read_all(out, alice)
    assert isinstance(error, TamperedError) and error.seq == removed + 1
    assert f"expected record seq {removed}" in str(error)
    assert_matches(got, expected[:removed])

    # Swap two of the track's records, re-encrypted with their seq numbers exchanged so the
    # sequence stays gapless: the record MAC catches the first.
    a, b = chunks[mine[1]], chunks[mine[2]]
    swap: dict[int, bytes | None] = {
        mine[1]: _reencrypt(grant, b, dataclasses.replace(b.fields, seq=a.fields.seq)),
        mine[2]: _reencrypt(grant, a, dataclasses.replace(a.fields, seq=b.fields.seq)),
    }
    _rebuild(path, swap, out)
    got, error = read_all(out, alice)
    assert isinstance(error, TamperedError) and error.seq == mine[1]
    assert "record MAC" in str(error)
    assert_matches(got, expected[: mine[1]])

    # Cut the tail from the track's last record on, and write a matching end marker (the
    # track's entry recomputed with the grant): the end marker's own MAC needs the content key.
    end = next(c for c in scan_chunks(path, header_size(1)) if isinstance(c, EndChunk))
    cut = mine[-1]
    dropped = [c.fields.track_id for c in chunks[cut:]]
    tail: dict[int, bytes | None] = {i: None for i in range(cut, len(chunks))}
    tail[len(chunks)] = _forged_end(end, grant, dropped)
    _rebuild(path, tail, out)
    got, error = read_all(out, alice)
    assert isinstance(error, TamperedError) and "end marker" in str(error)
    assert_matches(got, expected[:cut])


def _reencrypt(grant: TrackGrant, chunk: RegionChunk, fields: fmt.RegionFields) -> bytes:
    """Decrypt one of the grant's records and encrypt its crop again under other fields."""
    ciphertext = fmt.split_sealed(chunk.ciphertext)[0]
    aad = fmt.region_aad(grant.recording_id, chunk.packed)
    plain = fmt.unpad(AESGCM(grant.key).decrypt(chunk.nonce, ciphertext, aad))
    return forge_chunk(grant.recording_id, grant.key, fields, plain)


def _forged_end(end: EndChunk, grant: TrackGrant, dropped: list[int]) -> bytes:
    """The end marker a grant holder would write after dropping records of tracks ``dropped``."""
    total = end.total - len(dropped)
    parts = [fmt.END_FIXED.pack(total, len(end.entries))]
    for track_id, (count, mac) in sorted(end.entries.items()):
        count -= dropped.count(track_id)
        if track_id == grant.track_id:
            mac = fmt.track_end_mac(grant.key, grant.recording_id, total, track_id, count)
        parts.append(fmt.END_ENTRY.pack(track_id, count, mac))
    body = b"".join(parts) + end.mac
    return fmt.CHUNK_HEAD.pack(fmt.CHUNK_END, len(body)) + body


def _noisy_face(seed: int, noise: int, size: tuple[int, int] = (40, 32)) -> np.ndarray:
    """A smooth gradient plus noise of the given amplitude: compressed size grows with it."""
    h, w = size
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, h * w * 3).reshape(h, w, 3)
    return np.clip(base + rng.integers(-noise, noise + 1, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("lossy", [False, True])
def test_ciphertext_lengths_are_padded_to_buckets(
    tmp_path: Path, alice: X25519PrivateKey, lossy: bool
) -> None:
    crops = [_noisy_face(i, noise) for i, noise in enumerate(range(0, 60, 3))]
    frames = [(i, crop, [Region((0, 0, 32, 40), 1)]) for i, crop in enumerate(crops)]
    path = tmp_path / "s.sdeid"
    expected = write_sidecar(path, [alice], frames, lossy=lossy)
    compressed = [len(encode(crop, lossy)[1]) for crop in crops]
    sealed = [len(fmt.split_sealed(c.ciphertext)[0]) for c in region_chunks(path, 1)]
    for n, length in zip(compressed, sealed, strict=True):
        assert length != n + fmt.TAG_SIZE  # the v1 leak: length confirmed a candidate crop
        padded = length - fmt.TAG_SIZE
        assert padded == fmt.padded_size(fmt.PAD_LENGTH.size + n)
        assert padded % fmt.PAD_MIN == 0
    # Distinct crops, distinct compressed sizes, far fewer distinct ciphertext sizes.
    assert len(set(compressed)) == len(crops)
    assert len(set(sealed)) <= len(set(compressed)) // 2
    got, error = read_all(path, alice)
    assert error is None and len(got) == len(expected)
    if not lossy:
        assert_matches(got, expected)


def test_padded_size_is_a_bounded_bucket() -> None:
    previous = 0
    for n in [*range(1, 9000), *range(9000, 1 << 21, 997)]:
        size = fmt.padded_size(n)
        assert size >= n and size % fmt.PAD_MIN == 0 and size >= previous
        assert size - n < max(fmt.PAD_MIN, n / 16)  # overhead: < 256 B, or < 1/16 above 4 KiB
        previous = size
    # 16 buckets per doubling above 4 KiB (fewer, coarser buckets than bytes)
    assert len({fmt.padded_size(n) for n in range(8193, 16385)}) == 16


def test_unpad_accepts_only_what_pad_produces() -> None:
    for n in (0, 1, 251, 252, 253, 4000, 5000):
        plain = os.urandom(n)
        padded = fmt.pad(plain)
        assert fmt.unpad(padded) == plain and len(padded) == fmt.padded_size(n + 4)
    padded = fmt.pad(b"crop")
    bad = {
        "short": padded[:3],
        "length beyond": fmt.PAD_LENGTH.pack(len(padded)) + padded[4:],
        "nonzero padding": padded[:-1] + b"\x01",
        "extra bucket": padded + bytes(fmt.PAD_MIN),
        "cut bucket": padded[:-1],
    }
    for name, data in bad.items():
        with pytest.raises(ValueError, match="padded plaintext"):
            fmt.unpad(data)
        assert name


@pytest.mark.parametrize("lossy", [False, True])
def test_round_trip_across_bucket_boundaries_is_bit_exact(
    tmp_path: Path, alice: X25519PrivateKey, lossy: bool
) -> None:
    image = textured_frame(5, 72, 96)
    sizes = [1, 2, 5, 9, 12, 20, 31, 40, 64, 72]  # noise: ~50 B to ~20 KiB of PNG
    frames = [
        (i, image, [Region((0, 0, min(s, 96), s), i % 3 or None)]) for i, s in enumerate(sizes)
    ]
    path = tmp_path / "s.sdeid"
    expected = write_sidecar(path, [alice], frames, lossy=lossy)
    reader = SidecarReader(path)
    reader.unlock(alice)
    got = list(reader.records(audit_ctx=AUDIT))
    if lossy:
        assert [g.xyxy for g in got] == [e.xyxy for e in expected]
    else:
        assert_matches(got, expected)
    grant = reader.make_grant(1)
    mine, error = read_all(path, grant=grant)
    assert error is None
    want = [e for e in expected if e.track_id == 1]
    if not lossy:
        assert_matches(mine, want)
    assert [m.xyxy for m in mine] == [w.xyxy for w in want]


def test_issue_12_forged_track_in_a_real_recording_is_refused(
    synthetic: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    """The reported attack on an anonymized clip: every record of one person re-encrypted with
    that person's grant. A full-key reader refuses the first one; the grant still reads."""
    clip, gt = synthetic
    generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", b"pass phrase 12")
    key = load_private_key(tmp_path / "r.key", b"pass phrase 12")
    config = Config().override(
        {
            "reversible.enabled": True,
            "reversible.recipients": [str(tmp_path / "r.pub")],
            "reversible.originals": "regions",  # the attack targets per-region records
        }
    )
    masked = tmp_path / "masked.mp4"
    detector = ScriptedDetector([f["boxes"] for f in gt])
    anonymize_file(clip, masked, config, detector_factory=lambda: detector)
    sidecar = Path(f"{masked}.sdeid")
    n_recipients = 1
    chunks = region_chunks(sidecar, n_recipients)
    counts: dict[int, int] = {}
    for c in chunks:
        counts[c.fields.track_id] = counts.get(c.fields.track_id, 0) + 1
    track = max((t for t in counts if t), key=counts.__getitem__)
    reader = SidecarReader(sidecar)
    reader.unlock(key)
    authentic = list(reader.records(audit_ctx=AUDIT))
    grant = reader.make_grant(track)

    forged = tmp_path / "forged.sdeid"
    _rebuild(sidecar, _forge_track(sidecar, grant, "track key"), forged)
    got, error = read_all(forged, key)
    first = next(i for i, c in enumerate(chunks) if c.fields.track_id == track)
    assert isinstance(error, TamperedError) and error.seq == first
    assert f"record seq {first} " in str(error) and f"track {track}," in str(error)
    assert "\n" not in str(error)
    assert len(got) == first
    for g, a in zip(got, authentic, strict=False):
        np.testing.assert_array_equal(g.pixels, a.pixels)
    mine, error = read_all(sidecar, grant=grant)
    assert error is None and len(mine) == counts[track]
