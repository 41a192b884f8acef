"""Files in the output folder: written under a temporary name, then renamed into place.

Nothing is ever half-written under its final name: every output, chunk part and joined video is
written as ``.NAME.partial-PID.EXT`` in the same folder and moved with :func:`os.replace`, which
is atomic on one filesystem. Parts wait in ``.streamdeid-parts/FILE-ID/`` until their file is
joined. Leftover temporary files of a killed driver are removed by the next run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from streamdeid.errors import BatchError, SinkError
from streamdeid.io.concat import join_parts

PARTS_DIR = ".streamdeid-parts"
_PARTIAL = ".partial-"


def temp_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (same folder, same suffix)."""
    return path.with_name(f".{path.stem}{_PARTIAL}{os.getpid()}{path.suffix}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write '{path}': {e.strerror or e}") from e


def part_path(out_dir: Path, file_id: int, index: int, suffix: str) -> Path:
    return out_dir / PARTS_DIR / str(file_id) / f"chunk-{index:05d}{suffix}"


def join_atomic(
    parts: Sequence[Path], output: Path, *, audio_from: str, audio: str, frames: int
) -> str:
    """Join ``parts`` into ``output`` (temporary name, checked, renamed); returns its SHA-256.

    Raises:
        BatchError: the joined video does not have ``frames`` frames with distinct pts.
        SinkError: the parts cannot be joined or the output written.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(output)
    try:
        joined = join_parts(parts, tmp, audio_from=audio_from, audio=audio)
        if len(set(joined.pts)) != frames or len(joined.pts) != frames:
            raise BatchError(
                f"'{output}': expected {frames} frames with distinct pts after joining "
                f"{len(parts)} chunks, got {len(joined.pts)} ({len(set(joined.pts))} distinct)"
            )
        digest = file_sha256(tmp)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def remove_parts(out_dir: Path, file_id: int) -> None:
    folder = out_dir / PARTS_DIR / str(file_id)
    if folder.is_dir():
        for p in folder.iterdir():
            p.unlink(missing_ok=True)
        folder.rmdir()
    try:
        (out_dir / PARTS_DIR).rmdir()  # only when it is empty
    except OSError:
        pass


def remove_partials(out_dir: Path) -> int:
    """Delete temporary files a killed run left in ``out_dir``; returns how many."""
    count = 0
    for p in out_dir.rglob(f".*{_PARTIAL}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            count += 1
    return count
