"""The one pixel-format rule of every encoder (streamdeid.io.pixfmt)."""

from __future__ import annotations

import numpy as np
import pytest

from streamdeid.errors import SinkError
from streamdeid.io.pixfmt import choose_pix_fmt, to_video_frame


@pytest.mark.parametrize(
    ("encoder", "size", "requested", "expected"),
    [
        ("libx264", (64, 48), None, "yuv420p"),
        ("libx264", (65, 48), None, "yuv444p"),  # odd width: 4:4:4, never padded
        ("libx264", (64, 47), None, "yuv444p"),  # odd height
        ("libx264", (64, 48), "yuv444p", "yuv444p"),  # asked for wins
        ("libx264", (65, 47), "yuv444p", "yuv444p"),
        ("libx265", (65, 48), None, "yuv444p"),
        ("libvpx-vp9", (64, 48), None, "yuv420p"),
        ("gif", (65, 47), "yuv420p", "rgb8"),  # palettized, whatever was asked
        ("ffv1", (65, 47), None, "bgr0"),  # lossless BGR
        ("ffv1", (64, 48), "yuv444p", "yuv444p"),
    ],
)
def test_choose_pix_fmt(
    encoder: str, size: tuple[int, int], requested: str | None, expected: str
) -> None:
    assert choose_pix_fmt(encoder, *size, requested) == expected


@pytest.mark.parametrize("requested", ["yuv420p", "yuvj420p"])
def test_an_odd_size_refuses_4_2_0(requested: str) -> None:
    with pytest.raises(SinkError, match=r"needs an even size, got 65x48: use yuv444p.*never pads"):
        choose_pix_fmt("libx264", 65, 48, requested)


@pytest.mark.parametrize(
    ("size", "pix_fmt", "frame_format"),
    [
        ((64, 48), "yuv420p", "yuv420p"),  # converted by OpenCV
        ((64, 48), "yuv444p", "bgr24"),  # left to the encoder's swscale
        ((65, 47), "yuv420p", "bgr24"),
        ((64, 48), None, "bgr24"),
    ],
)
def test_to_video_frame(size: tuple[int, int], pix_fmt: str | None, frame_format: str) -> None:
    w, h = size
    frame = to_video_frame(np.zeros((h, w, 3), np.uint8), pix_fmt)
    assert (frame.width, frame.height, frame.format.name) == (w, h, frame_format)
