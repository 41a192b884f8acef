"""Grant packages: one track's originals, cut from the kept source, for a grant holder.

When a recording keeps its originals as the input's packets (:mod:`streamdeid.crypto.source`),
those packets hold whole frames: no track key may open them, or a grant for one person would
show everyone. So issuing a grant also writes ``GRANT.sdeid`` beside the grant file: a sidecar
under the recording's own header and content key that holds only that track's regions, cut from
the decoded source and stored as per-region crops (PNG, bit-exact; JPEG with ``lossy``). The
grant opens it like any sidecar, and a full-key reader verifies it like the original (same
record MACs). Packages are made on demand, for the tracks handed out, so the recording itself
stays compact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamdeid.crypto import FormatError, RevealedRegion, SidecarReader
from streamdeid.crypto.parse import check_box
from streamdeid.crypto.verify_packets import FrameBoxes
from streamdeid.crypto.writer import SidecarWriter
from streamdeid.io.packet_decoder import decode_runs
from streamdeid.types import Region

log = logging.getLogger(__name__)

PACKAGE_SUFFIX = ".sdeid"


def package_path(grant: str | os.PathLike[str]) -> Path:
    """Where the package of ``grant`` lives: beside it, with ``.sdeid`` appended."""
    return Path(os.fspath(grant) + PACKAGE_SUFFIX)


def write_package(
    reader: SidecarReader, track_id: int, grant: str | os.PathLike[str], lossy: bool = False
) -> int:
    """Cut ``track_id``'s regions from the kept source into the package of ``grant``.

    The reader must be unlocked with a private key. Decoding stops after the track's last
    frame. The package is removed again if anything fails, so no partial package is left.

    Returns:
        The number of regions written.

    Raises:
        LockedError: The reader holds no content key.
        SidecarIOError: The package exists or cannot be written.
        CryptoError, SourceError: The sidecar fails verification or its source does not decode.
    """
    header, recording_id, content_key = reader.package_keys()
    path = package_path(grant)
    writer = SidecarWriter.for_package(path, header, recording_id, content_key, lossy)
    written = 0
    try:
        for boxes, image in source_frames(reader, [track_id]):
            regions = [Region(box, track_id) for _, box in boxes.boxes]
            writer.write_regions(boxes.pts, boxes.time_base, image, regions)
            written += len(regions)
        writer.close()
    except BaseException:
        writer.abort()
        path.unlink(missing_ok=True)
        raise
    log.info("wrote package %s: %d regions of track %d", path, written, track_id)
    return written


def source_regions(reader: SidecarReader, track_ids: list[int] | None) -> Iterator[RevealedRegion]:
    """The regions of ``track_ids`` (None: all), cut from the decoded kept source, in frame
    order, as :meth:`SidecarReader.records` yields them from per-region crops.

    No audit entry is written here: callers log first.

    Raises:
        LockedError: The reader holds no content key.
        CryptoError, SourceError: The sidecar fails verification or its source does not decode.
    """
    for boxes, image in source_frames(reader, track_ids):
        for track_id, box in boxes.boxes:
            x1, y1, x2, y2 = check_box(box, image.shape[1], image.shape[0])
            crop = image[y1:y2, x1:x2].copy()
            yield RevealedRegion(boxes.pts, boxes.time_base, track_id, box, crop)


def source_frames(
    reader: SidecarReader, track_ids: list[int] | None
) -> Iterator[tuple[FrameBoxes, np.ndarray]]:
    """Each frame with a box of ``track_ids``: its index entry and the decoded original.

    Decoding stops after the last such frame; the index pass still verifies the whole file,
    end marker included, before this ends.
    """
    entries = reader.frame_boxes(track_ids)
    pending = next(entries, None)
    if pending is not None:
        for index, image in decode_runs(reader.source_runs()):
            while pending is not None and pending.frame_index < index:
                pending = next(entries, None)  # not reached with an intact, monotonic index
            if pending is None:
                break
            if pending.frame_index == index:
                yield pending, image
                pending = next(entries, None)
    if pending is not None:
        for _ in entries:  # a cut or tampered file is reported as such first
            pass
        raise FormatError(
            f"sidecar {reader.path}: the index names frame {pending.frame_index}, but the kept "
            "source decodes to fewer frames"
        )
    for _ in entries:  # verifies the rest of the file, end marker included
        pass
