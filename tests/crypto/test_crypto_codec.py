"""Crop codecs: an image header is checked against the record's box before anything is decoded."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from crypto_helpers import AUDIT, small_sidecar
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from streamdeid.crypto import FormatError, SidecarReader, codec
from streamdeid.crypto import inputs as writer_module
from streamdeid.crypto.codec import Codec, CodecError

HUGE = 16384


def _png(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height``, with a tiny (wrong) IDAT: a bomb header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real 8x8 JPEG whose frame header is edited to claim ``width`` x ``height``."""
    _, data = codec.encode(np.zeros((8, 8, 3), np.uint8), lossy=True)
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("imdecode ran before the header was checked")

    monkeypatch.setattr(codec.cv2, "imdecode", refuse)


@pytest.mark.parametrize("make", [_png, _jpeg_claiming], ids=["png", "jpeg"])
def test_huge_header_is_refused_without_decoding(make, no_decoding: None) -> None:
    data = make(HUGE, HUGE)
    codec_id = Codec.PNG if make is _png else Codec.JPEG
    with pytest.raises(CodecError, match=f"header says {HUGE}x{HUGE}"):
        codec.decode(codec_id, data, (10, 12, 3))
    with pytest.raises(CodecError, match="1 to 8192 pixels a side") as info:
        codec.decode(codec_id, data, (HUGE, HUGE, 3))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_png(4, 4, depth=16), "depth 16"),
        (_png(4, 4, colour=6), "colour type 6"),
        (b"\x89PNG\r\n", "signature and IHDR"),
        (b"GIF89a" + bytes(40), "signature and IHDR"),
    ],
    ids=["16-bit", "rgba", "cut", "gif"],
)
def test_png_headers_other_than_8_bit_rgb_are_refused(
    data: bytes, message: str, no_decoding: None
) -> None:
    with pytest.raises(CodecError, match=message):
        codec.decode(Codec.PNG, data, (4, 4, 3))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xd8", "frame header"),
        (b"\xff\xd8\xff\xda\x00\x02", "frame header"),
        (b"\xff\xd8\x00\x00\x00\x00", "marker at byte 2"),
        (b"\x89PNG\r\n\x1a\n", "SOI"),
    ],
    ids=["soi-only", "scan-first", "no-marker", "png"],
)
def test_jpeg_without_a_usable_frame_header_is_refused(
    data: bytes, message: str, no_decoding: None
) -> None:
    with pytest.raises(CodecError, match=message):
        codec.decode(Codec.JPEG, data, (4, 4, 3))


@pytest.mark.parametrize("lossy", [False, True])
def test_encoded_crops_still_decode(lossy: bool) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    codec_id, data = codec.encode(pixels, lossy)
    assert codec.decode(codec_id, data, (37, 53, 3)).shape == (37, 53, 3)


def test_authentic_record_with_a_huge_png_header_is_a_format_error(
    tmp_path: Path, alice: X25519PrivateKey, monkeypatch: pytest.MonkeyPatch, no_decoding: None
) -> None:
    """A writer bug (or a malicious writer) cannot make the reviewer allocate 16384x16384."""
    monkeypatch.setattr(
        writer_module, "encode", lambda pixels, lossy: (Codec.PNG, _png(HUGE, HUGE))
    )
    small_sidecar(tmp_path / "s.sdeid", [alice])
    reader = SidecarReader(tmp_path / "s.sdeid")
    reader.unlock(alice)
    with pytest.raises(FormatError, match=f"header says {HUGE}x{HUGE}") as info:
        next(iter(reader.records(audit_ctx=AUDIT)))
    assert "\n" not in str(info.value)
