"""Bounded fuzzing of sidecar readers: any mutation ends in the project's own errors.

Mutations: bit flips, truncations, chunks spliced in from another recording, garbage chunks, and
records re-encrypted by a grant holder with arbitrary (malicious) fields and plaintexts. A
full-key reader must only ever yield a prefix of the authentic records; a grant reader and the
keyless track summary must never raise anything but a :class:`StreamDeidError`.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pytest
from crypto_helpers import (
    AUDIT,
    Expected,
    assert_matches,
    forge_chunk,
    header_size,
    textured_frame,
    write_sidecar,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamdeid.crypto import SidecarReader, TrackGrant
from streamdeid.crypto import format as fmt
from streamdeid.crypto.parse import scan_chunks
from streamdeid.errors import StreamDeidError
from streamdeid.types import Region

TRACK = 2
U32 = st.integers(0, fmt.MAX_U32)


class Corpus:
    """The sidecar to mutate and what reading it must give (a plain class: a short repr)."""

    def __init__(
        self,
        data: bytes,
        spans: list[tuple[int, int]],
        other_chunks: list[bytes],
        expected: list[Expected],
        key: X25519PrivateKey,
        grant: TrackGrant,
    ) -> None:
        self.data = data
        self.spans = spans  # (start, end) of every chunk, end marker last
        self.other_chunks = other_chunks  # chunks of another recording with the same keys
        self.expected = expected
        self.key = key
        self.grant = grant

    def __repr__(self) -> str:
        return f"Corpus({len(self.data)} bytes, {len(self.spans)} chunks)"


@dataclass(frozen=True)
class Mutated:
    """A mutated sidecar; the repr names the mutation instead of printing every byte."""

    what: str
    data: bytes = field(repr=False)


def _spans(path: Path, data: bytes) -> list[tuple[int, int]]:
    starts = [c.offset for c in scan_chunks(path, header_size(1))] + [len(data)]
    return list(itertools.pairwise(starts))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    key = X25519PrivateKey.generate()
    tmp = tmp_path_factory.mktemp("fuzz")
    frames = [
        (
            100 * i,
            textured_frame(i, 24, 32),
            [Region((1, 1, 9, 11), 1), Region((12, 4, 22, 16), TRACK), Region((0, 18, 4, 24))],
        )
        for i in range(3)
    ]
    expected = write_sidecar(tmp / "a.sdeid", [key], frames)
    write_sidecar(tmp / "b.sdeid", [key], frames)
    data, other = (tmp / "a.sdeid").read_bytes(), (tmp / "b.sdeid").read_bytes()
    reader = SidecarReader(tmp / "a.sdeid")
    reader.unlock(key)
    grant = reader.make_grant(TRACK)
    other_chunks = [other[s:e] for s, e in _spans(tmp / "b.sdeid", other)]
    return Corpus(data, _spans(tmp / "a.sdeid", data), other_chunks, expected, key, grant)


def _png(seed: int, h: int, w: int) -> bytes:
    return cv2.imencode(".png", textured_frame(seed, h, w))[1].tobytes()


@st.composite
def malicious_record(draw: st.DrawFn, seq: int) -> tuple[fmt.RegionFields, bytes]:
    """Fields and plaintext a grant holder might encrypt: often a crop that decodes to its box,
    at the sequence number of the record it replaces, with a valid time base."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    x1, y1 = draw(st.one_of(st.integers(0, 40), U32)), draw(st.one_of(st.integers(0, 40), U32))
    consistent = draw(st.booleans())
    x2 = x1 + w if consistent else draw(U32)
    y2 = y1 + h if consistent else draw(U32)
    fields = fmt.RegionFields(
        seq=draw(st.one_of(st.just(seq), st.integers(0, 12), st.integers(0, (1 << 64) - 1))),
        pts=draw(st.integers(-(1 << 63), (1 << 63) - 1)),
        tb_num=draw(st.one_of(st.just(1), st.just(0), U32)),
        tb_den=draw(st.one_of(st.just(90000), st.just(0), U32)),
        track_id=draw(st.one_of(st.just(TRACK), st.integers(-(1 << 63), (1 << 63) - 1))),
        x1=x1,
        y1=y1,
        x2=min(x2, fmt.MAX_U32),
        y2=min(y2, fmt.MAX_U32),
        codec=draw(st.one_of(st.sampled_from([1, 2]), st.integers(0, 255))),
    )
    plain = draw(st.one_of(st.binary(max_size=600), st.just(_png(draw(st.integers(0, 9)), h, w))))
    return fields, plain


@st.composite
def mutation(draw: st.DrawFn, c: Corpus) -> Mutated:
    data, spans = c.data, c.spans
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "garbage", "forge"]))
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return Mutated(kind, bytes(out))
    if kind == "truncate":
        return Mutated(kind, data[: draw(st.integers(0, len(data) - 1))])
    index = draw(st.integers(0, len(spans) - 1))
    at = spans[index]
    replace = draw(st.booleans())
    if kind == "splice":
        new = draw(st.sampled_from(c.other_chunks))
    elif kind == "garbage":
        head = fmt.CHUNK_HEAD.pack(draw(st.integers(0, 255)), draw(U32))
        new = head + draw(st.binary(max_size=200))
    else:
        fields, plain = draw(malicious_record(index))
        kind = f"forge {fields} with {len(plain)} plaintext bytes"
        mac = draw(st.one_of(st.none(), st.binary(min_size=32, max_size=32)))
        new = forge_chunk(
            c.grant.recording_id, c.grant.key, fields, plain, mac, draw(st.booleans())
        )
    what = f"{kind} {'replacing' if replace else 'before'} chunk at byte {at[0]}"
    return Mutated(what, data[: at[0]] + new + data[at[1] if replace else at[0] :])


def _read_all(path: Path, c: Corpus, full: bool) -> list:
    reader = SidecarReader(path)
    if full:
        reader.unlock(c.key)
    else:
        reader.unlock_track(c.grant)
    return list(reader.records(audit_ctx=AUDIT))


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_sidecars_raise_only_project_errors(corpus: Corpus, data: st.DataObject) -> None:
    mutated = data.draw(mutation(corpus))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.sdeid"
        path.write_bytes(mutated.data)
        try:
            SidecarReader(path).tracks()  # keyless summary
        except StreamDeidError as e:
            event(f"tracks: {type(e).__name__}")
        got: list = []
        try:
            reader = SidecarReader(path)
            reader.unlock(corpus.key)
            for region in reader.records(audit_ctx=AUDIT):
                got.append(region)
        except StreamDeidError as e:
            event(f"full key: {type(e).__name__}")
        assert_matches(got, corpus.expected[: len(got)])  # never a forged region
        try:
            _read_all(path, corpus, full=False)
        except StreamDeidError as e:
            event(f"grant: {type(e).__name__} {str(e).split(': ')[-1][:40]}")
