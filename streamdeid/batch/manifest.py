"""The job manifest: one SQLite file in the output folder that says what is done.

It records every file and every chunk with its state (``pending``, ``running``, ``done``,
``failed``), how often it was submitted, its stats and the SHA-256 of what it wrote. Only the
driver writes it, one committed transaction per change, so a killed driver leaves it consistent:
``--resume`` skips what is ``done`` and submits everything else again (``running`` work died with
the driver). The config and chunking it was made with are kept too, and a resume with others is
refused, because finished chunks of one config must not be joined with chunks of another.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamdeid.batch.plan import ChunkSpec
from streamdeid.errors import BatchError, ConfigError

MANIFEST_NAME = "streamdeid-batch.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    input TEXT NOT NULL UNIQUE,
    output TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    stats TEXT,
    sha256 TEXT,
    error TEXT,
    updated REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    file_id INTEGER NOT NULL REFERENCES files(id),
    idx INTEGER NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    stats TEXT,
    sha256 TEXT,
    error TEXT,
    updated REAL,
    PRIMARY KEY (file_id, idx)
);
"""


@dataclass(frozen=True)
class FileRow:
    id: int
    input: str
    output: str
    state: str
    attempts: int
    chunks: int
    stats: dict[str, Any] | None
    sha256: str | None
    error: str | None


@dataclass(frozen=True)
class ChunkRow:
    file_id: int
    spec: ChunkSpec
    state: str
    attempts: int
    stats: dict[str, Any] | None
    sha256: str | None
    error: str | None


class Manifest:
    """The manifest of one output folder. Use :meth:`open`; close it (or use ``with``).

    Example:
        >>> with Manifest.open(out_dir, fingerprint="…", resume=False) as m:  # doctest: +SKIP
        ...     file_id = m.add_file("in/a.mp4", "a.mp4")
    """

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db

    @classmethod
    def open(cls, out_dir: str | Path, fingerprint: str, *, resume: bool) -> Manifest:
        """Open (``resume``) or create the manifest of ``out_dir``.

        Raises:
            ConfigError: a manifest exists and ``resume`` is off, or it was made with another
                config or chunking than ``fingerprint`` says.
            BatchError: the file cannot be opened as a manifest.
        """
        path = Path(out_dir) / MANIFEST_NAME
        if path.exists() and not resume:
            raise ConfigError(
                f"'{path}' exists: expected a fresh output folder, found an earlier batch "
                "(pass --resume to continue it)"
            )
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.executescript(_SCHEMA)
            manifest = cls(path, db)
            manifest._check_fingerprint(fingerprint)
        except sqlite3.Error as e:
            raise BatchError(f"cannot open the batch manifest '{path}': {e}") from e
        return manifest

    def _check_fingerprint(self, fingerprint: str) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        if row is None:
            with self._tx():
                self._db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        elif row[0] != fingerprint:
            raise ConfigError(
                f"'{self.path}': expected the config and --chunk-seconds of the batch being "
                f"resumed ({row[0][:12]}), got others ({fingerprint[:12]})"
            )

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add_file(self, input: str, output: str) -> FileRow:
        """The row of ``input``, created ``pending`` if it is new."""
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO files (input, output, updated) VALUES (?, ?, ?)",
                (input, output, time.time()),
            )
        row = self.file_by_input(input)
        if row is None:  # pragma: no cover - inserted just above
            raise BatchError(f"'{self.path}': the row of '{input}' vanished")
        return row

    def file_by_input(self, input: str) -> FileRow | None:
        row = self._db.execute("SELECT * FROM files WHERE input = ?", (input,)).fetchone()
        return _file_row(row) if row else None

    def file(self, file_id: int) -> FileRow:
        row = self._db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _file_row(row)

    def files(self) -> list[FileRow]:
        return [_file_row(r) for r in self._db.execute("SELECT * FROM files ORDER BY id")]

    def set_chunks(self, file_id: int, specs: list[ChunkSpec]) -> None:
        """Record a file's chunk plan (once: a resumed file keeps the plan it was started with)."""
        with self._tx():
            self._db.execute("UPDATE files SET chunks = ? WHERE id = ?", (len(specs), file_id))
            self._db.executemany(
                "INSERT OR IGNORE INTO chunks (file_id, idx, spec, updated) VALUES (?, ?, ?, ?)",
                [(file_id, s.index, json.dumps(s.to_dict()), time.time()) for s in specs],
            )

    def drop_chunks(self, file_id: int) -> None:
        """Forget a file's chunk plan: it is run whole instead."""
        with self._tx():
            self._db.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            self._db.execute("UPDATE files SET chunks = 0 WHERE id = ?", (file_id,))

    def chunks(self, file_id: int) -> list[ChunkRow]:
        rows = self._db.execute(
            "SELECT file_id, spec, state, attempts, stats, sha256, error FROM chunks "
            "WHERE file_id = ? ORDER BY idx",
            (file_id,),
        )
        return [ChunkRow(r[0], _spec(r[1]), r[2], r[3], _json(r[4]), r[5], r[6]) for r in rows]

    def mark_file(self, file_id: int, state: str, **fields: Any) -> None:
        """Set a file's state; ``submitted=True`` counts an attempt, other fields are columns."""
        self._mark("files", "id = ?", (file_id,), state, fields)

    def mark_chunk(self, file_id: int, index: int, state: str, **fields: Any) -> None:
        self._mark("chunks", "file_id = ? AND idx = ?", (file_id, index), state, fields)

    def _mark(
        self, table: str, where: str, key: tuple[int, ...], state: str, fields: dict[str, Any]
    ) -> None:
        sets, values = ["state = ?", "updated = ?"], [state, time.time()]
        if fields.pop("submitted", False):
            sets.append("attempts = attempts + 1")
        for name, value in fields.items():
            if name not in ("stats", "sha256", "error"):
                raise ValueError(f"unknown manifest column {name!r}")
            sets.append(f"{name} = ?")
            values.append(json.dumps(value) if name == "stats" else value)
        with self._tx():
            self._db.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}", (*values, *key))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None


def _spec(text: str) -> ChunkSpec:
    return ChunkSpec.from_dict(json.loads(text))


def _file_row(r: tuple[Any, ...]) -> FileRow:
    return FileRow(r[0], r[1], r[2], r[3], r[4], r[5], _json(r[6]), r[7], r[8])
