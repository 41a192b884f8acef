"""Bounded fuzzing of sidecars that keep source packets: only the project's own errors.

Two kinds of input: random damage to a real recording's sidecar (bit flips, cuts, spliced
bytes), and authentic runs with malicious content (written with the content key, as a rogue
recipient could): garbage packets, an unknown codec, absurd picture sizes, an index naming
frames the packets do not hold.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamdeid.crypto import SidecarReader, load_private_key, load_public_key
from streamdeid.crypto.source import SourcePacket, StreamParams
from streamdeid.crypto.writer import SidecarWriter
from streamdeid.errors import StreamDeidError
from streamdeid.reveal import reveal_frames, revealed_regions
from streamdeid.types import Region

from helpers import PASS, reversible_recording


@pytest.fixture(scope="module")
def rec(synthetic, tmp_path_factory) -> dict:
    made = reversible_recording(synthetic, tmp_path_factory.mktemp("fuzzrec"))
    return {
        **made,
        "data": Path(f"{made['masked']}.sdeid").read_bytes(),
        "key": load_private_key(made["key"], PASS),
        "pub": load_public_key(made["pub"]),
    }


def read_everything(video: Path, sidecar: Path, rec: dict) -> None:
    """Every way of reading a sidecar; success is fine, any error must be the project's own."""
    ctx = rec["ctx"]
    for step in (
        lambda: SidecarReader(sidecar).tracks(),
        lambda: list(revealed_regions(_unlocked(sidecar, rec), audit_ctx=ctx)),
        lambda: list(reveal_frames(video, _unlocked(sidecar, rec), audit_ctx=ctx)),
    ):
        try:
            step()
        except StreamDeidError:
            pass


def _unlocked(sidecar: Path, rec: dict) -> SidecarReader:
    reader = SidecarReader(sidecar)
    reader.unlock(rec["key"])
    return reader


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.integers(1, 64)),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_damaged_source_sidecars_raise_only_project_errors(rec, tmp_path_factory, mutations):
    folder = tmp_path_factory.mktemp("fz")
    video = folder / "m.mp4"
    shutil.copy(rec["masked"], video)
    data = bytearray(rec["data"])
    for kind, where, arg in mutations:
        at = int(where * (len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << arg
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = bytes(range(arg))
        if not data:
            break
    sidecar = Path(f"{video}.sdeid")
    sidecar.write_bytes(bytes(data))
    read_everything(video, sidecar, rec)


PARAMS = StreamParams("h264", b"", 640, 360, 1, 25)


@pytest.mark.parametrize(
    "params, packets",
    [
        (PARAMS, [SourcePacket(0, 0, True, bytes(range(256)) * 8)]),  # garbage H.264
        (StreamParams("nosuchcodec", b"", 640, 360, 1, 25), [SourcePacket(0, 0, True, b"x")]),
        (StreamParams("h264", b"\xff" * 64, 65535, 65535, 1, 25), [SourcePacket(0, 0, True, b"")]),
        (PARAMS, []),  # an index and no frames at all
    ],
    ids=["garbage-packets", "unknown-codec", "absurd-size", "no-packets"],
)
def test_authentic_but_malicious_runs_are_project_errors(rec, tmp_path, params, packets) -> None:
    video = tmp_path / "m.mp4"
    shutil.copy(rec["masked"], video)
    sidecar = Path(f"{video}.sdeid")
    with SidecarWriter(sidecar, [rec["pub"]]) as writer:
        writer.begin_source(params)
        for p in packets:
            writer.write_packet(p)
        writer.write_index(0, 0, Fraction(1, 25), (640, 360), [Region((10, 10, 50, 50), 1)])
    with pytest.raises(StreamDeidError):
        list(revealed_regions(_unlocked(sidecar, rec), audit_ctx=rec["ctx"]))
