"""Reversible masking of real-world archives: the kept packets restore every box bit-exact.

The sidecar keeps the input's own packets, and reveal decodes them again; that only works if
both decodes skip, repair and number frames identically. Every file of the robust-input corpus
(B-frame AVI, pts wraps, corrupt packets, 10-bit, HEVC, ...) is anonymized with ``--recipient``
and revealed with the full key: each restored box must equal the decoded input.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamdeid import anonymize_file
from streamdeid.audit import AuditContext
from streamdeid.config import Config
from streamdeid.crypto import SidecarReader, generate_keypair, load_private_key
from streamdeid.crypto.signing import generate_signing_key, load_signing_key
from streamdeid.io.source import FileSource
from streamdeid.reveal import reveal_frames, revealed_regions

from corpus import MAKERS
from frame_code import CodeDetector

PASS = b"correct horse battery staple"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("keys")
    generate_keypair(folder / "r.key", folder / "r.pub", PASS)
    generate_signing_key(folder / "s.key", folder / "s.pub", PASS)
    return {
        "pub": folder / "r.pub",
        "key": load_private_key(folder / "r.key", PASS),
        "ctx": AuditContext(load_signing_key(folder / "s.key", PASS)),
    }


def ms(pts: int, time_base: Fraction) -> int:
    """A frame's time in whole milliseconds (what an MKV output stores)."""
    return round(pts * time_base * 1000)


def frames(path: Path) -> list:
    with FileSource(path) as src:
        src.stream.codec_context.thread_count = 1  # as a kept source is decoded (SourceKeeper)
        return list(src.frames())


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_box_restores_bit_exact(name: str, keys: dict, tmp_path: Path) -> None:
    clip = MAKERS[name](tmp_path)
    out = tmp_path / "anon.mkv"
    config = Config().override(
        {
            "reversible.enabled": True,
            "reversible.recipients": [str(keys["pub"])],
            "obscure.method": "solid",
        }
    )
    anonymize_file(clip.path, out, config, detector_factory=lambda: CodeDetector(clip.boxes))
    reader = SidecarReader(f"{out}.sdeid")
    reader.unlock(keys["key"])
    source, masked = frames(clip.path), frames(out)
    assert len(source) == len(masked)
    index_of = {ms(f.pts, f.time_base): f.index for f in masked}
    regions = list(revealed_regions(reader, audit_ctx=keys["ctx"]))
    assert len(regions) >= len(source) // 2
    revealed = list(reveal_frames(out, reader, audit_ctx=keys["ctx"]))
    for region in regions:
        i = index_of[ms(region.pts, region.time_base)]
        x1, y1, x2, y2 = region.xyxy
        original = source[i].image[y1:y2, x1:x2]
        np.testing.assert_array_equal(region.pixels, original, err_msg=f"{name} frame {i}")
        np.testing.assert_array_equal(revealed[i].image[y1:y2, x1:x2], original)
