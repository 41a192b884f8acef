"""``streamdeid batch``: many files, and long files in chunks, on a Ray cluster.

The parts, one job each: :mod:`~streamdeid.batch.inputs` (INPUT arguments to jobs),
:mod:`~streamdeid.batch.plan` (where a video is cut, warm-up and tail of each chunk),
:mod:`~streamdeid.batch.work` (what a worker runs), :mod:`~streamdeid.batch.manifest` (what is
done, for ``--resume``), :mod:`~streamdeid.batch.store` (outputs written whole or not at all),
:mod:`~streamdeid.batch.driver` (planning, submitting, settling), :mod:`~streamdeid.batch.report`
(progress and summary), :mod:`~streamdeid.batch.cluster` (Ray: the only module importing it) and
:mod:`~streamdeid.batch.runner` (:func:`run_batch`).

Example:
    >>> from streamdeid.batch import run_batch
    >>> report = run_batch(["videos/"], "anon/", address="auto")  # doctest: +SKIP
"""

from __future__ import annotations

from streamdeid.batch.report import BatchProgress, BatchReport, FileOutcome
from streamdeid.batch.runner import run_batch

__all__ = ["BatchProgress", "BatchReport", "FileOutcome", "run_batch"]
