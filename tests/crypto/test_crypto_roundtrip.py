from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from crypto_helpers import (
    AUDIT,
    TIME_BASE,
    assert_matches,
    small_sidecar,
    textured_frame,
    write_sidecar,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import (
    LockedError,
    SidecarIOError,
    SidecarReader,
    SidecarWriter,
    TrackSummary,
    TruncatedError,
    WrongKeyError,
)
from streamdeid.types import Region

REPO = Path(__file__).resolve().parents[2]


def _read_all(path: Path, key: X25519PrivateKey, **kwargs: object) -> list:
    reader = SidecarReader(path)
    reader.unlock(key)
    return list(reader.records(audit_ctx=AUDIT, **kwargs))


def test_lossless_round_trip_is_bit_exact(tmp_path: Path, alice: X25519PrivateKey) -> None:
    h, w = 48, 64
    frames = []
    for i in range(4):
        regions = [
            Region((0, 0, 17, 13), 1),  # top-left corner
            Region((w - 9, h - 11, w, h), 2),  # bottom-right corner, x2/y2 exclusive
            Region((30 + i, 20, 31 + i, 21), 3),  # 1x1
            Region((10, 5, 40, 30), None),  # overlaps track 1: both stored from the original
            Region((0, 0, w, h), 5),  # whole frame
        ]
        frames.append((3003 * i - 3003, textured_frame(i, h, w), regions))
    expected = write_sidecar(tmp_path / "s.sdeid", [alice], frames)
    assert_matches(_read_all(tmp_path / "s.sdeid", alice), expected)


def test_lossy_round_trip_is_close(tmp_path: Path, alice: X25519PrivateKey) -> None:
    # A smooth, face-like texture: JPEG at q95 is meant for natural images, not white noise.
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    face = cv2.resize(coarse, (100, 120), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(face + rng.normal(0, 2, face.shape), 0, 255).astype(np.uint8)
    image = np.zeros((140, 120, 3), np.uint8)
    image[10:130, 10:110] = noisy
    frames = [(0, image, [Region((10, 10, 110, 130), 1)])]
    lossless = write_sidecar(tmp_path / "png.sdeid", [alice], frames)
    expected = write_sidecar(tmp_path / "jpg.sdeid", [alice], frames, lossy=True)
    (got,) = _read_all(tmp_path / "jpg.sdeid", alice)
    assert got.pixels.shape == expected[0].pixels.shape
    mse = np.mean((got.pixels.astype(np.float64) - expected[0].pixels) ** 2)
    assert 10 * np.log10(255**2 / mse) > 35
    assert (tmp_path / "jpg.sdeid").stat().st_size < (tmp_path / "png.sdeid").stat().st_size
    assert_matches(_read_all(tmp_path / "png.sdeid", alice), lossless)


def test_each_of_two_recipients_can_unlock_and_others_cannot(
    tmp_path: Path, alice: X25519PrivateKey, bob: X25519PrivateKey, mallory: X25519PrivateKey
) -> None:
    expected = small_sidecar(tmp_path / "s.sdeid", [alice, bob])
    assert_matches(_read_all(tmp_path / "s.sdeid", alice), expected)
    assert_matches(_read_all(tmp_path / "s.sdeid", bob), expected)
    reader = SidecarReader(tmp_path / "s.sdeid")
    with pytest.raises(WrongKeyError, match="expected a private key for one of"):
        reader.unlock(mallory)
    with pytest.raises(LockedError):
        reader.records(audit_ctx=AUDIT)


def test_tracks_are_summarised_without_a_key(tmp_path: Path, alice: X25519PrivateKey) -> None:
    small_sidecar(tmp_path / "s.sdeid", [alice])
    tracks = SidecarReader(tmp_path / "s.sdeid").tracks()
    without_box = [
        TrackSummary(t.track_id, t.first_pts, t.last_pts, t.count, t.time_base) for t in tracks
    ]
    assert without_box == [
        TrackSummary(0, 0, 1000, 2, TIME_BASE),
        TrackSummary(1, 0, 1000, 2, TIME_BASE),
        TrackSummary(7, 0, 1000, 2, TIME_BASE),
    ]
    for t in tracks:  # the first box each track was masked at, for thumbnails
        x1, y1, x2, y2 = t.first_xyxy
        assert x2 > x1 >= 0 and y2 > y1 >= 0


def test_records_can_be_filtered_by_track(tmp_path: Path, alice: X25519PrivateKey) -> None:
    expected = small_sidecar(tmp_path / "s.sdeid", [alice])
    got = _read_all(tmp_path / "s.sdeid", alice, track_ids=[7])
    assert_matches(got, [e for e in expected if e.track_id == 7])


def test_time_base_may_be_a_tuple_and_is_normalised(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    image = textured_frame(0, 4, 4)
    with SidecarWriter(tmp_path / "s.sdeid", [alice.public_key()]) as writer:
        writer.write_regions(5, (2, 60), image, [Region((0, 0, 2, 2), 1)])
        writer.write_regions(6, (1, 30), image, [])  # a frame without faces writes nothing
        assert writer.records_written == 1
    (got,) = _read_all(tmp_path / "s.sdeid", alice)
    assert got.time_base == Fraction(1, 30)


def test_flushed_records_are_readable_before_close(tmp_path: Path, alice: X25519PrivateKey) -> None:
    path = tmp_path / "live.sdeid"
    writer = SidecarWriter(path, [alice.public_key()])
    frames = [(i, textured_frame(i, 8, 8), [Region((1, 1, 5, 5), 1)]) for i in range(3)]
    for pts, image, regions in frames:
        writer.write_regions(pts, TIME_BASE, image, regions)
        writer.flush()
    reader = SidecarReader(path)
    reader.unlock(alice)
    got = []
    with pytest.raises(TruncatedError, match="no end marker") as info:
        got.extend(reader.records(audit_ctx=AUDIT))
    assert [g.pts for g in got] == [0, 1, 2]
    assert info.value.records_read == 3
    assert [t.count for t in reader.tracks()] == [3]  # summarised, warning only
    writer.close()
    writer.close()  # idempotent
    assert [g.pts for g in reader.records(audit_ctx=AUDIT)] == [0, 1, 2]


def test_killed_writer_leaves_every_flushed_frame_readable(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    path = tmp_path / "killed.sdeid"
    pub = tmp_path / "alice.pub"
    from cryptography.hazmat.primitives import serialization

    pub.write_bytes(
        alice.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    script = textwrap.dedent(
        f"""
        import os, signal
        from fractions import Fraction
        import numpy as np
        from streamdeid.crypto import SidecarWriter, load_public_key
        from streamdeid.types import Region
        w = SidecarWriter({str(path)!r}, [load_public_key({str(pub)!r})])
        image = np.full((8, 8, 3), 7, np.uint8)
        for pts in range(4):
            w.write_regions(pts, Fraction(1, 25), image, [Region((0, 0, 4, 4), 1)])
            if pts < 3:
                w.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    reader = SidecarReader(path)
    reader.unlock(alice)
    got = []
    with pytest.raises(TruncatedError) as info:
        got.extend(reader.records(audit_ctx=AUDIT))
    assert [g.pts for g in got] == [0, 1, 2]
    assert all((g.pixels == 7).all() for g in got)
    assert info.value.records_read == 3


def test_writer_rejects_bad_input_without_touching_the_file(
    tmp_path: Path, alice: X25519PrivateKey
) -> None:
    path = tmp_path / "s.sdeid"
    image = textured_frame(0, 10, 10)
    writer = SidecarWriter(path, [alice.public_key()])
    writer.flush()
    size = path.stat().st_size
    bad_calls = [
        (0, TIME_BASE, image, [Region((0, 0, 2, 2), 1), Region((5, 5, 11, 6), 1)]),  # outside
        (0, TIME_BASE, image[:, :, 0], [Region((0, 0, 2, 2), 1)]),  # not BGR
        (0, TIME_BASE, image.astype(np.float32), [Region((0, 0, 2, 2), 1)]),
        (0, (1, 0), image, [Region((0, 0, 2, 2), 1)]),
        (0, Fraction(-1, 30), image, [Region((0, 0, 2, 2), 1)]),
        (None, TIME_BASE, image, [Region((0, 0, 2, 2), 1)]),
        (0, TIME_BASE, image, [Region((0, 0, 2, 2), -3)]),
    ]
    for pts, tb, img, regions in bad_calls:
        with pytest.raises(ValueError):
            writer.write_regions(pts, tb, img, regions)  # type: ignore[arg-type]
    writer.flush()
    assert path.stat().st_size == size
    assert writer.records_written == 0
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write_regions(0, TIME_BASE, image, [Region((0, 0, 2, 2), 1)])
    with pytest.raises(ValueError, match="closed"):
        writer.flush()


def test_writer_recipient_and_path_checks(
    tmp_path: Path, alice: X25519PrivateKey, bob: X25519PrivateKey
) -> None:
    with pytest.raises(ValueError, match="at least one"):
        SidecarWriter(tmp_path / "a.sdeid", [])
    with pytest.raises(ValueError, match="twice"):
        SidecarWriter(tmp_path / "a.sdeid", [alice.public_key(), alice.public_key()])
    with pytest.raises(ValueError, match="X25519PublicKey"):
        SidecarWriter(tmp_path / "a.sdeid", [alice])  # type: ignore[list-item]
    assert not list(tmp_path.iterdir())
    SidecarWriter(tmp_path / "a.sdeid", [alice.public_key()]).close()
    with pytest.raises(SidecarIOError, match="overwrite"):
        SidecarWriter(tmp_path / "a.sdeid", [bob.public_key()])
    SidecarWriter(tmp_path / "a.sdeid", [bob.public_key()], overwrite=True).close()
    assert _read_all(tmp_path / "a.sdeid", bob) == []
    with pytest.raises(SidecarIOError, match="cannot create"):
        SidecarWriter(tmp_path / "missing" / "a.sdeid", [bob.public_key()])
    with pytest.raises(SidecarIOError, match="not found"):
        SidecarReader(tmp_path / "nope.sdeid")
