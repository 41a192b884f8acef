"""``tracks --thumbnails``: a crop of each track's first box from the masked video.

The boxes come from the sidecar without a key, so they are unauthenticated: one that does not
fit the video costs that track its thumbnail, never the listing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def track_thumbnails(
    video: str | os.PathLike[str], summaries: list[Any], folder: str | os.PathLike[str]
) -> list[Path]:
    """Crop each track's first box (grown 2×) from the *masked* video into PNGs."""
    import cv2

    from streamdeid.crypto.errors import FormatError
    from streamdeid.crypto.parse import check_box
    from streamdeid.io.source import FileSource

    by_pts = {s.first_pts: [] for s in summaries}  # type: dict[int, list[Any]]
    for s in summaries:
        by_pts[s.first_pts].append(s)
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with FileSource(video) as source:
        for frame in source.frames():
            for s in by_pts.get(frame.pts if frame.pts is not None else -1, []):
                try:  # keyless, so unauthenticated: an edited box must not crash the listing
                    x1, y1, x2, y2 = check_box(s.first_xyxy, frame.width, frame.height)
                except FormatError as e:
                    print(f"track {s.track_id}: no thumbnail: {e}", file=sys.stderr)
                    continue
                w, h = x2 - x1, y2 - y1
                crop = frame.image[
                    max(0, y1 - h // 2) : y2 + h // 2, max(0, x1 - w // 2) : x2 + w // 2
                ]
                path = out_dir / f"track_{s.track_id}.png"
                cv2.imwrite(str(path), crop)
                written.append(path)
    return written
