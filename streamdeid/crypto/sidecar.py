"""The sidecar that makes masking reversible: one writer, one reader, one file format.

:class:`SidecarWriter` (in :mod:`streamdeid.crypto.writer`) needs only public keys and runs in the
pipeline; :class:`SidecarReader` (in :mod:`streamdeid.crypto.reader`) runs on a reviewer's machine.
They live apart because they run in different places and change for different reasons, and
share their byte layout through :mod:`streamdeid.crypto.format` (described in
:mod:`streamdeid.crypto`). This module keeps the one import path the pipeline needs.
"""

from __future__ import annotations

from streamdeid.crypto.grants import TrackGrant, export_grant, load_grant
from streamdeid.crypto.reader import RevealedRegion, SidecarReader, TrackSummary
from streamdeid.crypto.writer import SidecarWriter

__all__ = [
    "RevealedRegion",
    "SidecarReader",
    "SidecarWriter",
    "TrackGrant",
    "TrackSummary",
    "export_grant",
    "load_grant",
]
