"""The driver of a batch: plan each file, submit its work, settle the results into the output.

The driver is the only process that writes the output folder and the manifest. Workers (through
an :class:`Executor`; :mod:`streamdeid.batch.cluster` is the Ray one) return encoded bytes, which
the driver writes under a temporary name and renames into place. A video long enough is cut
into chunks (:mod:`streamdeid.batch.plan`), whose parts are joined when the last one arrives. A
file that fails is recorded with its reason and the batch goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from streamdeid.batch.inputs import Job
from streamdeid.batch.manifest import FileRow, Manifest
from streamdeid.batch.plan import ChunkSpec, plan_chunks
from streamdeid.batch.report import BatchProgress, BatchReport, FileOutcome, sum_chunk_stats
from streamdeid.batch.store import (
    file_sha256,
    join_atomic,
    part_path,
    remove_parts,
    write_atomic,
)
from streamdeid.batch.work import ChunkTask, FileTask, WorkResult, sha256
from streamdeid.config import Config
from streamdeid.errors import ChunkMismatchError, Interrupted, StreamDeidError
from streamdeid.io.chunk_source import probe_packets
from streamdeid.io.source import is_image_path

log = logging.getLogger(__name__)

WHOLE = -1  # the chunk index of a whole-file task
WorkKey = tuple[int, int]  # (file id in the manifest, chunk index or WHOLE)
Task = ChunkTask | FileTask
ProgressFn = Callable[[BatchProgress], None]
# Containers whose packets the planner trusts to seek and cut in (others run whole).
CHUNKABLE = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm"})


@dataclass(frozen=True)
class WorkFailure:
    """Why a task failed; ``run_whole`` asks for the file to be run unchunked instead."""

    reason: str
    run_whole: bool = False


def failure_of(error: BaseException) -> WorkFailure:
    """The failure a task's exception stands for (the executor found it on the worker)."""
    if isinstance(error, ChunkMismatchError):
        return WorkFailure(str(error), run_whole=True)
    if isinstance(error, StreamDeidError):
        return WorkFailure(str(error))
    return WorkFailure(f"internal error: {type(error).__name__}: {error}")


class Executor(Protocol):
    """Runs tasks somewhere (a Ray cluster) and hands back their outcomes."""

    capacity: int  # tasks worth keeping in flight

    def submit(self, key: WorkKey, task: Task) -> None: ...

    def poll(self, timeout_s: float) -> list[tuple[WorkKey, WorkResult | WorkFailure]]: ...

    def in_flight(self) -> int: ...

    def cancel(self) -> None: ...


@dataclass(frozen=True)
class BatchSettings:
    chunk_s: float = 60.0
    warmup_s: float = 2.0


@dataclass
class _File:
    job: Job
    row: FileRow
    specs: list[ChunkSpec] = field(default_factory=list)
    done: dict[int, dict[str, object]] = field(default_factory=dict)  # chunk index -> stats
    frames: int = 0
    settled: bool = False


class Batch:
    """One run over ``jobs`` into ``out_dir`` (see :func:`streamdeid.batch.run_batch`)."""

    def __init__(
        self,
        jobs: list[Job],
        out_dir: Path,
        config: Config,
        manifest: Manifest,
        executor: Executor,
        settings: BatchSettings,
        *,
        keys: dict[str, bytes] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.jobs, self.out_dir, self.config = jobs, out_dir, config
        self.manifest, self.executor, self.settings = manifest, executor, settings
        self.keys = keys or {}
        self.on_progress = progress
        self.progress = BatchProgress(files_total=len(jobs))
        self._frames_known = 0  # frames of the files planned so far
        self.submitted = 0
        self._config_data = config.model_dump(mode="json")
        self._unplanned = deque(jobs)
        self._queue: deque[tuple[WorkKey, Task]] = deque()
        self._files: dict[int, _File] = {}
        self._skipped: set[int] = set()

    def run(self, stop: threading.Event | None = None) -> BatchReport:
        """Run every job to done or failed; stop early (``Interrupted``) when ``stop`` is set."""
        t0 = time.perf_counter()
        self._report_progress()
        while True:
            if stop is not None and stop.is_set():
                self._interrupt()
            self._fill()
            if not self.executor.in_flight() and not self._queue and not self._unplanned:
                break
            for key, outcome in self.executor.poll(0.5):
                self._settle(key, outcome)
                self._report_progress()
        self._report_progress()
        return BatchReport(self._outcomes(), self.submitted, time.perf_counter() - t0)

    def _interrupt(self) -> None:
        self.executor.cancel()
        for f in self._files.values():
            if not f.settled:
                self.manifest.mark_file(f.row.id, "pending")
        done = self.progress.files_done
        raise Interrupted(
            f"interrupted after {done} of {len(self.jobs)} files: --resume continues the batch"
        )

    def _fill(self) -> None:
        """Plan files and submit their tasks until the executor has enough in flight."""
        while self.executor.in_flight() < self.executor.capacity:
            if not self._queue:
                if not self._unplanned:
                    return
                self._plan(self._unplanned.popleft())
                continue
            key, task = self._queue.popleft()
            if key[1] == WHOLE:
                self.manifest.mark_file(key[0], "running")
            else:
                self.manifest.mark_chunk(*key, "running", submitted=True)
            self.executor.submit(key, task)
            self.submitted += 1

    def _plan(self, job: Job) -> None:
        row = self.manifest.add_file(job.input, job.output)
        f = self._files[row.id] = _File(job, row)
        if row.state == "done" and verify_output(self.out_dir, row):
            f.settled = True
            self._skipped.add(row.id)
            self.progress.files_done += 1
            self.progress.frames_done += int((row.stats or {}).get("frames", 0))
            self._frames_known += int((row.stats or {}).get("frames", 0))
            return
        self.manifest.mark_file(row.id, "running", submitted=True)
        try:
            self._plan_chunks(f)
        except StreamDeidError as e:
            self._fail(f, str(e))
            return
        self._frames_known += f.frames
        if not f.specs:
            self._queue.append(((row.id, WHOLE), self._file_task(job)))
            return
        self.progress.chunks_total += len(f.specs)
        for spec in f.specs:
            if spec.index in f.done:
                self.progress.chunks_done += 1
                self.progress.frames_done += spec.frames
            else:
                self._queue.append(((row.id, spec.index), self._chunk_task(job, spec)))
        if len(f.done) == len(f.specs):  # the driver died before joining them
            try:
                self._join(f)
            except StreamDeidError as e:
                self._fail(f, str(e))

    def _plan_chunks(self, f: _File) -> None:
        """Chunks of ``f`` (kept from an earlier run, else planned now), or none to run whole."""
        job, cfg = f.job, self.config
        earlier = self.manifest.chunks(f.row.id)
        if earlier:
            f.specs = [c.spec for c in earlier]
            f.frames = f.specs[-1].end
            suffix = Path(job.output).suffix
            for c in earlier:
                part = part_path(self.out_dir, f.row.id, c.spec.index, suffix)
                if c.state == "done" and c.stats and part.exists() and _same(part, c.sha256):
                    f.done[c.spec.index] = c.stats
            return
        if job.is_url or is_image_path(job.input):
            f.frames = 0 if job.is_url else 1
            return
        packets = probe_packets(job.input)
        f.frames = len(packets.pts)
        if cfg.reversible.enabled or Path(job.output).suffix.lower() not in CHUNKABLE:
            return  # reversible: one sidecar per output, written by the whole-file API
        plan = plan_chunks(
            packets,
            self.settings.chunk_s,
            warmup_s=self.settings.warmup_s,
            warmup_frames=cfg.tracker.max_coast_frames + cfg.pipeline.detect_every,
            detect_every=cfg.pipeline.detect_every,
        )
        if plan.chunked:
            f.specs = plan.chunks
            self.manifest.set_chunks(f.row.id, plan.chunks)
        else:
            log.info("%s runs whole: %s", job.input, plan.reason)

    def _chunk_task(self, job: Job, spec: ChunkSpec) -> ChunkTask:
        return ChunkTask(job.input, Path(job.output).suffix, self._config_data, spec)

    def _file_task(self, job: Job) -> FileTask:
        return FileTask(job.input, Path(job.output).name, self._config_data, self.keys)

    def _settle(self, key: WorkKey, outcome: WorkResult | WorkFailure) -> None:
        f = self._files[key[0]]
        if f.settled or (key[1] != WHOLE and not f.specs):
            return  # the file failed, or is now run whole: late results of its chunks
        try:
            if isinstance(outcome, WorkFailure):
                self._settle_failure(f, key[1], outcome)
            elif key[1] == WHOLE:
                self._settle_file(f, outcome)
            else:
                self._settle_chunk(f, key[1], outcome)
        except StreamDeidError as e:
            self._fail(f, str(e))

    def _settle_failure(self, f: _File, index: int, failure: WorkFailure) -> None:
        if index == WHOLE:
            self._fail(f, failure.reason)
            return
        self.manifest.mark_chunk(f.row.id, index, "failed", error=failure.reason)
        if not failure.run_whole:
            self._fail(f, f"chunk {index}: {failure.reason}")
            return
        log.warning("%s: %s; running the file whole", f.job.input, failure.reason)
        self.progress.chunks_total -= len(f.specs)
        self.progress.chunks_done -= len(f.done)
        self.progress.frames_done -= sum(int(s.get("frames", 0)) for s in f.done.values())
        self.manifest.drop_chunks(f.row.id)
        remove_parts(self.out_dir, f.row.id)
        f.specs, f.done = [], {}
        self._unqueue(f.row.id)
        self._queue.appendleft(((f.row.id, WHOLE), self._file_task(f.job)))

    def _unqueue(self, file_id: int) -> None:
        """Forget the tasks of a file not submitted yet (it failed, or now runs whole)."""
        self._queue = deque(item for item in self._queue if item[0][0] != file_id)

    def _settle_chunk(self, f: _File, index: int, result: WorkResult) -> None:
        data = result.files[""]
        write_atomic(part_path(self.out_dir, f.row.id, index, Path(f.job.output).suffix), data)
        self.manifest.mark_chunk(f.row.id, index, "done", stats=result.stats, sha256=sha256(data))
        f.done[index] = result.stats
        self.progress.chunks_done += 1
        self.progress.frames_done += int(result.stats.get("frames", 0))
        if len(f.done) == len(f.specs):
            self._join(f)

    def _join(self, f: _File) -> None:
        suffix = Path(f.job.output).suffix
        parts = [part_path(self.out_dir, f.row.id, s.index, suffix) for s in f.specs]
        digest = join_atomic(
            parts,
            self.out_dir / f.job.output,
            audio_from=f.job.input,
            audio=self.config.encoder.audio,
            frames=f.frames,
        )
        stats = sum_chunk_stats([f.done[s.index] for s in f.specs])
        self._finish(f, stats, digest)
        remove_parts(self.out_dir, f.row.id)

    def _settle_file(self, f: _File, result: WorkResult) -> None:
        output = self.out_dir / f.job.output
        for extra, data in result.files.items():  # the sidecar before the video it belongs to
            if extra:
                write_atomic(output.with_name(output.name + extra), data)
        write_atomic(output, result.files[""])
        stats = dict(result.stats)
        if not f.frames:  # a URL: its length is known now
            self._frames_known += int(stats.get("frames", 0))
        self.progress.frames_done += int(stats.get("frames", 0))
        self._finish(f, stats, sha256(result.files[""]))

    def _finish(self, f: _File, stats: dict[str, object], digest: str) -> None:
        self.manifest.mark_file(f.row.id, "done", stats=stats, sha256=digest, error=None)
        f.settled = True
        self.progress.files_done += 1
        log.info("%s: done (%s frames)", f.job.output, stats.get("frames"))

    def _fail(self, f: _File, reason: str) -> None:
        self._unqueue(f.row.id)
        self.manifest.mark_file(f.row.id, "failed", error=reason)
        f.settled = True
        self.progress.files_failed += 1
        log.info("%s failed: %s", f.job.input, reason)  # the report lists it

    def _report_progress(self) -> None:
        """Tell ``on_progress``; files not planned yet count as the average planned one."""
        if self.on_progress is None:
            return
        planned = len(self._files)
        guess = self._frames_known * len(self._unplanned) // planned if planned else 0
        self.progress.frames_total = self._frames_known + guess
        self.on_progress(self.progress)

    def _outcomes(self) -> list[FileOutcome]:
        outcomes = []
        for job in self.jobs:
            row = self.manifest.file_by_input(job.input)
            if row is None:
                continue
            state = "skipped" if row.id in self._skipped else row.state
            outcomes.append(
                FileOutcome(
                    job.input, job.output, state, row.chunks, row.sha256, row.error, row.stats or {}
                )
            )
        return outcomes


def verify_output(out_dir: Path, row: FileRow) -> bool:
    """True when a file marked done still has the output it wrote (same SHA-256)."""
    return _same(out_dir / row.output, row.sha256)


def _same(path: Path, digest: str | None) -> bool:
    return path.is_file() and digest == file_sha256(path)
