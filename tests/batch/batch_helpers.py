"""Running batches without Ray (an in-process executor) and comparing outputs with `run`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamdeid.batch.driver import WHOLE, WorkFailure, WorkKey, failure_of
from streamdeid.batch.work import ChunkTask, FileTask, WorkResult, run_chunk, run_file

from helpers import decode_frames, probe

Task = ChunkTask | FileTask


class LocalExecutor:
    """Runs each task in this process when it is submitted; ``hook`` may replace a task's run.

    ``submitted`` records every key, so tests can tell what a (resumed) batch ran.
    """

    capacity = 2

    def __init__(self, hook: Callable[[WorkKey, Task], WorkResult | None] | None = None) -> None:
        self.hook = hook
        self.submitted: list[WorkKey] = []
        self._ready: list[tuple[WorkKey, WorkResult | WorkFailure]] = []

    def submit(self, key: WorkKey, task: Task) -> None:
        self.submitted.append(key)
        try:
            result = self.hook(key, task) if self.hook else None
            if result is None:
                result = run_file(task) if key[1] == WHOLE else run_chunk(task)  # type: ignore[arg-type]
            self._ready.append((key, result))
        except Exception as e:  # noqa: BLE001 - as Ray would hand it over
            self._ready.append((key, failure_of(e)))

    def poll(self, timeout_s: float) -> list[tuple[WorkKey, WorkResult | WorkFailure]]:
        ready, self._ready = self._ready, []
        return ready

    def in_flight(self) -> int:
        return len(self._ready)

    def cancel(self) -> None:
        self._ready.clear()


def assert_same_timing(reference: Path, output: Path) -> None:
    """Same frame count, pts, size and audio packets as the single-process run."""
    a, b = probe(str(reference)), probe(str(output))
    assert b["pts"] == a["pts"]
    assert (b["width"], b["height"], b["rotation"]) == (a["width"], a["height"], a["rotation"])
    assert b.get("audio_pts") == a.get("audio_pts")


def frame_differences(reference: Path, output: Path) -> list[float]:
    """Mean absolute pixel difference per frame (re-encoding alone gives about 1 to 2)."""
    a, b = decode_frames(str(reference)), decode_frames(str(output))
    assert len(a) == len(b)
    return [float(np.abs(x.astype(np.int16) - y).mean()) for x, y in zip(a, b, strict=True)]


# --- a two-node Ray cluster on this machine, for test_batch_ray.py ---------------------------


@dataclass
class RayCluster:
    """Two ``ray start`` nodes; :meth:`stop` kills every process they started, by pid."""

    address: str  # HOST:PORT of the head's GCS
    client_address: str  # ray://HOST:PORT of its Ray Client server
    temp_dir: Path
    env: dict[str, str]
    marks: tuple[str, ...] = field(default=())

    def processes(self) -> dict[int, tuple[int, str]]:
        """pid -> (parent pid, command line) of this cluster's processes and their children."""
        table = _process_table()
        tree = {pid for pid, (_, cmd) in table.items() if any(m in cmd for m in self.marks)}
        grown = True
        while grown:
            more = {pid for pid, (ppid, _) in table.items() if ppid in tree} - tree
            tree |= more
            grown = bool(more)
        return {pid: table[pid] for pid in tree}

    def stop(self) -> None:
        for _ in range(3):  # workers may still be starting while the first round is killed
            for pid in self.processes():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _process_table() -> dict[int, tuple[int, str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry)] = (ppid, cmd)
    return table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster() -> RayCluster:
    """A head and a second node with one CPU each, in a private temporary folder."""
    temp = Path(tempfile.mkdtemp(prefix="sdray-", dir="/tmp"))  # Ray's socket paths are short
    port, client, dashboard = _free_port(), _free_port(), _free_port()
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    cluster = RayCluster(
        f"127.0.0.1:{port}",
        f"ray://127.0.0.1:{client}",
        temp,
        env,
        (str(temp), f"--port={client} "),
    )
    ray_cli = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--num-cpus=1",
        "--node-ip-address=127.0.0.1",
        f"--object-store-memory={100 << 20}",
        "--disable-usage-stats",
    ]
    head = [
        "--head",
        f"--port={port}",
        f"--temp-dir={temp}",
        f"--ray-client-server-port={client}",
        "--include-dashboard=false",
        f"--dashboard-port={dashboard}",
    ]
    run_env = {**os.environ, **env}
    try:
        # The second node starts as soon as the head's GCS listens, while the head still
        # starts its other processes: both `ray start` take several seconds of Python.
        head_start = subprocess.Popen(
            [*ray_cli, *head], env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        _wait_for_port(port, head_start)
        subprocess.run(
            [*ray_cli, f"--address={cluster.address}"],
            env=run_env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        output, _ = head_start.communicate(timeout=120)
        if head_start.returncode:
            raise RuntimeError(f"ray start --head failed: {output.decode()[-2000:]}")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        cluster.stop()
        output = getattr(e, "stderr", b"") or b""
        raise RuntimeError(f"ray start failed: {output.decode()[-2000:]}") from e
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_port(port: int, starting: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and starting.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    if starting.poll() is None:
        raise RuntimeError(f"the Ray head did not listen on port {port} within {timeout_s} s")


def worker_pids(cluster: RayCluster, title: str) -> list[int]:
    """Worker processes of ``cluster`` whose process title starts with ``title``."""
    return sorted(pid for pid, (_, cmd) in cluster.processes().items() if cmd.startswith(title))
