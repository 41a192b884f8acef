"""Original pixels and secrets must never reach the disk or the log in the clear."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest
from crypto_helpers import AUDIT, TIME_BASE, textured_frame

from streamdeid.crypto import (
    SidecarReader,
    SidecarWriter,
    export_grant,
    generate_keypair,
    load_private_key,
    load_public_key,
)
from streamdeid.crypto.codec import encode
from streamdeid.types import Region

RUN = 16


def _windows(data: bytes) -> set[bytes]:
    return {data[i : i + RUN] for i in range(len(data) - RUN + 1)}


def _first_leak(needle: bytes, haystack: set[bytes]) -> int | None:
    for i in range(len(needle) - RUN + 1):
        if needle[i : i + RUN] in haystack:
            return i
    return None


@pytest.mark.parametrize("lossy", [False, True])
def test_no_plaintext_pixels_or_secrets_on_disk_or_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, lossy: bool
) -> None:
    passphrase = b"distinctive passphrase 7f3a"
    image = textured_frame(42, 48, 64)
    regions = [Region((3, 4, 27, 30), 1), Region((40, 10, 64, 48), None), Region((0, 0, 1, 1), 2)]
    with caplog.at_level(logging.DEBUG):
        generate_keypair(tmp_path / "r.key", tmp_path / "r.pub", passphrase)
        with SidecarWriter(tmp_path / "s.sdeid", [load_public_key(tmp_path / "r.pub")], lossy) as w:
            w.write_regions(0, TIME_BASE, image, regions)
            w.flush()
            content_key = w._content_key
        reader = SidecarReader(tmp_path / "s.sdeid")
        reader.unlock(load_private_key(tmp_path / "r.key", passphrase))
        grant = export_grant(reader, 1, tmp_path / "t1.grant", audit_ctx=AUDIT)
        revealed = list(reader.records(audit_ctx=AUDIT))
    assert len(revealed) == 3

    on_disk: set[bytes] = set()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            on_disk |= _windows(path.read_bytes())
    secrets = [passphrase, content_key]
    needles: list[tuple[str, bytes]] = [(f"secret {i}", s) for i, s in enumerate(secrets)]
    for r in regions:
        x1, y1, x2, y2 = r.xyxy
        crop = image[y1:y2, x1:x2]
        needles.append((f"raw {r.xyxy}", crop.tobytes()))
        needles.append((f"codec {r.xyxy}", encode(crop, lossy)[1]))
        needles.append((f"png {r.xyxy}", cv2.imencode(".png", crop)[1].tobytes()))
        for row in range(y1, y2):  # rows of the frame as they sit in memory
            needles.append((f"row {row} {r.xyxy}", image[row, x1:x2].tobytes()))
    for name, needle in needles:
        at = _first_leak(needle, on_disk)
        assert at is None, f"{name}: bytes {at}..{at + RUN} found on disk"

    log_text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "reversible masking" in log_text  # the log was captured
    for secret in (passphrase, content_key, grant.key):
        assert secret.hex() not in log_text
        assert repr(secret)[2:-1] not in log_text
