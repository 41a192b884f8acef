from __future__ import annotations

import pytest

from streamdeid.media import backoff_delay, url_scheme


def test_backoff_doubles_up_to_its_cap_without_jitter() -> None:
    waits = [backoff_delay(n, 0.5, 3.0, 0.0) for n in range(1, 6)]
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_jitter_stays_within_its_fraction() -> None:
    for _ in range(200):
        assert 0.75 * 2.0 <= backoff_delay(2, 1.0, 10.0, 0.25) <= 1.25 * 2.0


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("RTSP://cam/x", "rtsp"), ("/dev/video0", ""), ("clip.mp4", ""), ("srt://h:1", "srt")],
)
def test_url_scheme(url: str, scheme: str) -> None:
    assert url_scheme(url) == scheme
