"""What a batch reports: progress while it runs, each file's outcome and the totals at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Counters summed over a file's chunks into the file's stats (a track that crosses a chunk
# boundary is counted by each chunk it appears in).
SUMMED = (
    "frames",
    "faces_detected",
    "regions",
    "frames_masked_whole",
    "tracks",
    "detector_runs",
    "detection_failures",
    "corrupt_packets",
    "seconds",
    "bytes",
)


@dataclass
class FileOutcome:
    """One file of a batch: ``done``, ``skipped`` (done by an earlier run), or ``failed``."""

    input: str
    output: str
    state: str
    chunks: int = 0
    sha256: str | None = None
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BatchProgress:
    """Where a batch is. Files are planned as the batch goes: ``frames_total`` counts the frames
    of those planned and, for each file not planned yet, the planned files' average."""

    files_total: int
    files_done: int = 0
    files_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    frames_done: int = 0
    frames_total: int = 0


@dataclass
class BatchReport:
    """Every file's outcome, in input order, and what the run submitted."""

    files: list[FileOutcome]
    submitted: int = 0  # tasks submitted by this run (0 when everything was done before)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.state == "failed"]

    def totals(self) -> dict[str, Any]:
        ok = [f for f in self.files if f.state != "failed"]
        frames = sum(int(f.stats.get("frames", 0)) for f in ok)
        return {
            "files": len(self.files),
            "done": sum(f.state == "done" for f in self.files),
            "skipped": sum(f.state == "skipped" for f in self.files),
            "failed": len(self.failed),
            "chunked": sum(f.chunks > 1 for f in self.files),
            "frames": frames,
            "faces_detected": sum(int(f.stats.get("faces_detected", 0)) for f in ok),
            "regions": sum(int(f.stats.get("regions", 0)) for f in ok),
            "submitted": self.submitted,
            "seconds": round(self.seconds, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"totals": self.totals(), "files": [f.to_dict() for f in self.files]}

    def summary(self) -> str:
        """One line for the end of a batch; failures follow on their own lines (CLI)."""
        t = self.totals()
        rate = t["frames"] / self.seconds if self.seconds else 0.0
        return (
            f"{t['files']} files ({t['done']} done, {t['skipped']} done before, {t['failed']} "
            f"failed; {t['chunked']} chunked), {t['frames']} frames, {t['faces_detected']} face "
            f"detections, {t['regions']} regions masked in {self.seconds:.1f} s ({rate:.1f} fps)"
        )


def sum_chunk_stats(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A chunked file's stats: the chunks' counters added up, and the chunks' own stats."""
    total: dict[str, Any] = {k: sum(c.get(k, 0) for c in chunks) for k in SUMMED}
    total["seconds"] = round(total["seconds"], 3)
    total["fps"] = round(total["frames"] / total["seconds"], 2) if total["seconds"] else 0.0
    total["chunks"] = chunks
    return total
