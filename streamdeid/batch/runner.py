"""``run_batch``: the Python API of ``streamdeid batch``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from streamdeid.batch.driver import Batch, BatchSettings, Executor, ProgressFn
from streamdeid.batch.inputs import Job, expand_inputs
from streamdeid.batch.manifest import Manifest
from streamdeid.batch.report import BatchReport
from streamdeid.batch.store import remove_partials
from streamdeid.config import Config
from streamdeid.errors import ConfigError

log = logging.getLogger(__name__)

REPORT_NAME = "streamdeid-batch.json"


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    config: Config | None = None,
    *,
    address: str | None = None,
    chunk_seconds: float = 60.0,
    resume: bool = False,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    warmup_seconds: float = 2.0,
    executor: Executor | None = None,
) -> BatchReport:
    """Anonymize many files on a Ray cluster into ``out_dir`` (README: "Batch on a cluster").

    Videos are cut at keyframes into chunks of about ``chunk_seconds`` that run on different
    workers and are joined without re-encoding; each chunk first runs detector and tracker over
    ``warmup_seconds`` before its start, so a face crossing the cut is masked as in a whole-file
    run. Images, URLs and reversible runs (one sidecar per output) run whole. The manifest in
    ``out_dir`` lets ``resume`` skip what is done. A failing file does not stop the others: the
    report lists it with its reason (and is written to ``out_dir/streamdeid-batch.json``).

    Args:
        inputs: files, folders (searched recursively) and text files listing paths or URLs.
        out_dir: the output folder (created); outputs keep their names and sub-folders.
        config: settings for every file; defaults to :class:`Config()`.
        address: None starts a local Ray instance; ``"auto"``, ``"HOST:PORT"`` or
            ``"ray://HOST:10001"`` joins a cluster. Ignored when Ray is already initialized.
        progress: called with a :class:`BatchProgress` whenever work settles.
        stop: set it to stop early (``Interrupted``); ``resume`` continues later.
        executor: runs the tasks instead of Ray (tests).

    Raises:
        MissingClusterError: Ray is not installed (exit code 2 on the command line).
        ConfigError: a manifest exists without ``resume``, or was made with another config.
        StreamDeidError: unusable inputs or cluster (a single failing file is only reported).

    Example:
        >>> report = run_batch(["videos/"], "anon/", chunk_seconds=30)  # doctest: +SKIP
        >>> print(report.summary(), [f.error for f in report.failed])  # doctest: +SKIP
    """
    config = config or Config()
    if not chunk_seconds > 0 or warmup_seconds < 0:
        raise ConfigError(
            f"expected chunk_seconds > 0 and warmup_seconds >= 0, got {chunk_seconds} "
            f"and {warmup_seconds}"
        )
    if executor is None:
        from streamdeid.batch.cluster import import_ray

        import_ray()  # before anything is written: without Ray, say what to install
    out = Path(out_dir)
    jobs = expand_inputs([os.fspath(i) for i in inputs], out)
    batch = _Prepared(jobs, out, config, BatchSettings(chunk_seconds, warmup_seconds), resume)
    report = batch.run(address, executor, progress, stop)
    (out / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=2) + "\n", "utf-8")
    return report


class _Prepared:
    """A batch whose inputs are known: checks the output folder, opens the manifest, runs."""

    def __init__(
        self, jobs: list[Job], out: Path, config: Config, settings: BatchSettings, resume: bool
    ) -> None:
        self.jobs, self.out, self.config, self.settings = jobs, out, config, settings
        self.keys = _public_keys(config)
        out.mkdir(parents=True, exist_ok=True)
        _check_clashes(out, [j.output for j in jobs], resume)
        self.resume = resume

    def run(
        self,
        address: str | None,
        executor: Executor | None,
        progress: ProgressFn | None,
        stop: threading.Event | None,
    ) -> BatchReport:
        fingerprint = _fingerprint(self.config, self.settings)
        with Manifest.open(self.out, fingerprint, resume=self.resume) as manifest:
            if removed := remove_partials(self.out):
                log.info("removed %d temporary files of an interrupted run", removed)

            def run_on(on: Executor) -> BatchReport:
                batch = Batch(
                    self.jobs,
                    self.out,
                    self.config,
                    manifest,
                    on,
                    self.settings,
                    keys=self.keys,
                    progress=progress,
                )
                return batch.run(stop)

            if executor is not None:
                return run_on(executor)
            from streamdeid.batch.cluster import connect

            with connect(address) as ray_executor:
                return run_on(ray_executor)


def _fingerprint(config: Config, settings: BatchSettings) -> str:
    """What finished chunks depend on: the config and how files are cut."""
    data = {
        "config": config.model_dump(mode="json"),
        "chunk_s": settings.chunk_s,
        "warmup_s": settings.warmup_s,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _public_keys(config: Config) -> dict[str, bytes]:
    """The reviewers' public key files, read (and checked) here: workers get their bytes."""
    if not config.reversible.enabled:
        return {}
    from streamdeid.crypto import load_public_key

    keys = {}
    for path in config.reversible.recipients:
        load_public_key(path)
        keys[path] = Path(path).read_bytes()
    return keys


def _check_clashes(out: Path, outputs: list[str], resume: bool) -> None:
    """Refuse to replace outputs that no manifest of ours accounts for."""
    if resume and (out / "streamdeid-batch.sqlite").exists():
        return
    clash = [o for o in outputs if (out / o).exists()]
    if clash:
        raise ConfigError(
            f"output '{out / clash[0]}' exists ({len(clash)} output(s) would be replaced): "
            "expected an empty output folder or --resume of the batch that wrote it"
        )
