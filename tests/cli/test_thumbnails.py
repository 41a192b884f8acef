"""``tracks --thumbnails`` reads boxes without a key, so they are unauthenticated: an edited box
must cost that track its thumbnail, never the whole listing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2

from streamdeid.cli._thumbnails import track_thumbnails
from streamdeid.io.source import FileSource


def test_a_box_outside_the_video_skips_that_thumbnail_only(synthetic, tmp_path: Path, capsys):
    clip, _ = synthetic
    with FileSource(clip) as source:
        first = next(iter(source.frames()))
    tracks = [
        SimpleNamespace(track_id=1, first_pts=first.pts, first_xyxy=(5000, 5000, 5100, 5100)),
        SimpleNamespace(track_id=2, first_pts=first.pts, first_xyxy=(10, 20, 60, 90)),
    ]
    written = track_thumbnails(clip, tracks, tmp_path / "thumbs")
    assert [p.name for p in written] == ["track_2.png"]
    assert cv2.imread(str(written[0])).shape[:2] == (90 + 35, 60 + 25)  # grown 2x, clipped at 0
    err = capsys.readouterr().err
    assert "track 1: no thumbnail" in err and "5000" in err
