"""The Ray side of a batch: joining or starting a cluster, and running tasks on it.

The only module of streamdeid that imports Ray, and only when a batch runs: without the
``cluster`` extra everything else works, and ``streamdeid batch`` says what to install.

* No address: a local Ray instance is started in this process, with one worker per CPU core,
  and stopped at the end.
* ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``: an existing cluster is joined (``ray start``
  on each node; the ``ray://`` form through Ray Client). Every node needs streamdeid and the same
  Ray version (the extra pins it), and must read the inputs at the same paths (or URLs).
* Already connected (``ray.init`` called by the program that calls :func:`run_batch`): that
  connection is used and left open.

Each task takes one CPU. A worker process that dies (killed, out of memory) is retried by Ray
(``max_retries``) on any node; an exception raised by streamdeid is not retried: it fails the
same way again, so its file is reported as failed instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streamdeid.batch.driver import WorkFailure, WorkKey, failure_of
from streamdeid.batch.work import ChunkTask, FileTask, WorkResult, run_chunk, run_file
from streamdeid.errors import BatchError, MissingClusterError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'streamdeid[cluster]'"
MAX_RETRIES = 3  # Ray's own default for tasks, stated: a worker may die this often per task


def import_ray() -> Any:
    """The ``ray`` module, or :class:`MissingClusterError` naming the extra to install."""
    try:
        import ray
    except ImportError as e:
        raise MissingClusterError(
            f"streamdeid batch needs Ray, which is not installed: {INSTALL_HINT}"
        ) from e
    return ray


class RayExecutor:
    """Submits chunk and file tasks as Ray tasks and hands back what they returned."""

    def __init__(self, ray: Any, max_retries: int = MAX_RETRIES) -> None:
        self._ray = ray
        self.max_retries = max_retries
        options = {"num_cpus": 1, "max_retries": max_retries, "retry_exceptions": False}
        self._chunk = ray.remote(**options)(run_chunk)
        self._file = ray.remote(**options)(run_file)
        self._refs: dict[Any, WorkKey] = {}
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # One task per core, plus one queued per core so no worker waits for the driver.
        self.capacity = max(2, 2 * cpus)

    def submit(self, key: WorkKey, task: ChunkTask | FileTask) -> None:
        remote = self._chunk if isinstance(task, ChunkTask) else self._file
        self._refs[remote.remote(task)] = key

    def in_flight(self) -> int:
        return len(self._refs)

    def poll(self, timeout_s: float) -> list[tuple[WorkKey, WorkResult | WorkFailure]]:
        if not self._refs:
            return []
        refs = list(self._refs)
        ready, rest = self._ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return [(self._refs.pop(ref), self._outcome(ref)) for ref in ready]

    def _outcome(self, ref: Any) -> WorkResult | WorkFailure:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as e:
            return failure_of(e.cause)
        except exceptions.WorkerCrashedError:
            return WorkFailure(
                f"its worker process died {self.max_retries + 1} times (killed, or out of memory)"
            )
        except exceptions.RayError as e:
            return WorkFailure(f"Ray failed: {type(e).__name__}: {one_line(e)}")

    def cancel(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()


@contextmanager
def connect(address: str | None, max_retries: int = MAX_RETRIES) -> Iterator[RayExecutor]:
    """A :class:`RayExecutor` on the cluster at ``address``, or on a local instance for None."""
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned:
        _init(ray, address)
    else:
        log.info("using this process's existing Ray connection")
    try:
        yield RayExecutor(ray, max_retries)
    finally:
        if owned:
            ray.shutdown()


def _init(ray: Any, address: str | None) -> None:
    common = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address is None:
            # Sized for this machine: one task per core (each task's pipeline keeps its threads
            # busy with decode, detection and encoding in turn), no dashboard.
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
        raise BatchError(f"cannot connect to {where}: {one_line(e)}") from e


def one_line(error: BaseException, limit: int = 300) -> str:
    """Ray's multi-line messages as one line for the CLI (the full text is in Ray's logs)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
