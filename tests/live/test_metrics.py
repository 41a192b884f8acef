"""Stats, the ``/metrics`` endpoint (Prometheus text format) and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import urllib.error
import urllib.request

import pytest

from streamdeid.cli._live_report import _summary
from streamdeid.errors import ConfigError
from streamdeid.io.frame_sink import FrameSink, SinkGroup
from streamdeid.live.logs import JsonFormatter, setup_logging
from streamdeid.live.metrics import MetricsServer, render
from streamdeid.live.stats import LiveStats, quantile
from streamdeid.types import Frame

# One sample line of the text exposition format: name{label="value",...} number
SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|NaN|Inf))$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse text exposition strictly: every sample needs a TYPE declared before it."""
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge"), line
            assert name not in types, f"TYPE declared twice: {name}"
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        name = m["name"]
        assert name in types, f"sample before its TYPE: {line!r}"
        if types[name] == "counter":
            assert name.endswith("_total"), name
        labels = frozenset(LABEL.findall(m["labels"] or ""))
        key = (name, labels)
        assert key not in samples, f"duplicate sample: {line!r}"
        samples[key] = float(m["value"])
    return samples


def busy_stats(camera: str) -> LiveStats:
    s = LiveStats(camera)
    for _ in range(30):
        s.add("frames_in")
    for lat in [0.05] * 20 + [0.2] * 5:
        s.frame_out(lat)
    s.drop("encode", 3)
    s.drop("detect", 2)
    s.add("detect_skipped", 7)
    s.add("faces", 11)
    s.set_state("running")
    return s


def test_render_is_valid_prometheus_text_with_per_camera_labels() -> None:
    a, b = busy_stats("lobby"), LiveStats('odd "name"\\')

    class Source:
        reconnects = 2
        frames_dropped = 4

    a.attach_source(Source())
    samples = parse_prometheus(render([a.snapshot(), b.snapshot()]))
    lobby = frozenset({("camera", "lobby")})
    assert samples[("streamdeid_frames_in_total", lobby)] == 30
    assert samples[("streamdeid_frames_out_total", lobby)] == 25
    assert samples[("streamdeid_detect_skipped_total", lobby)] == 7
    assert samples[("streamdeid_faces_total", lobby)] == 11
    assert samples[("streamdeid_reconnects_total", lobby)] == 2
    assert samples[("streamdeid_camera_up", lobby)] == 1
    drops = {
        stage: samples[("streamdeid_dropped_frames_total", lobby | {("stage", stage)})]
        for stage in ("source", "detect", "track", "obscure", "encode")
    }
    assert drops == {"source": 4, "detect": 2, "track": 0, "obscure": 0, "encode": 3}
    p50 = samples[("streamdeid_latency_seconds", lobby | {("quantile", "0.5")})]
    p95 = samples[("streamdeid_latency_seconds", lobby | {("quantile", "0.95")})]
    assert p50 == pytest.approx(0.05) and p95 == pytest.approx(0.2)
    assert samples[("streamdeid_fps_in", lobby)] > 0
    # The odd camera name is escaped, and "no data yet" is NaN, not a made-up 0 ms.
    odd = frozenset({("camera", 'odd \\"name\\"\\\\'), ("quantile", "0.5")})
    assert math.isnan(samples[("streamdeid_latency_seconds", odd)])


def test_metrics_server_serves_scrapes_over_http() -> None:
    stats = busy_stats("cam1")
    server = MetricsServer(lambda: [stats.snapshot()], port=0).start()
    try:
        assert server.host == "127.0.0.1"  # loopback unless asked
        with urllib.request.urlopen(server.url, timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            first = parse_prometheus(r.read().decode())
        stats.add("frames_in", 5)
        with urllib.request.urlopen(server.url, timeout=5) as r:
            second = parse_prometheus(r.read().decode())
        key = ("streamdeid_frames_in_total", frozenset({("camera", "cam1")}))
        assert second[key] == first[key] + 5  # counters are live, not a start-up copy
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=5)
        assert e.value.code == 404
    finally:
        server.stop()


def test_metrics_port_in_use_is_a_one_line_config_error() -> None:
    first = MetricsServer(lambda: [], port=0).start()
    try:
        with pytest.raises(ConfigError, match=r"--metrics-port: cannot serve metrics on"):
            MetricsServer(lambda: [], port=first.port).start()
    finally:
        first.stop()


def test_stats_line_and_counters_survive_a_source_restart() -> None:
    s = busy_stats("gate")

    class Source:
        def __init__(self, reconnects: int) -> None:
            self.reconnects = reconnects
            self.frames_dropped = 1

    s.attach_source(Source(2))
    s.attach_source(Source(1))  # the camera was restarted with a new source
    snap = s.snapshot()
    assert snap.reconnects == 3 and snap.drops["source"] == 2
    line = snap.line()
    for part in ("gate:", "in=30", "out=25", "p50=50ms", "p95=200ms", "drop=7", "skip=7"):
        assert part in line, line
    assert s.run_quantiles((0.5, 0.95)) == pytest.approx([0.05, 0.2], abs=0.006)


class Publisher(FrameSink):
    """An output that only reports packet drops, as an RTSP publisher does."""

    def __init__(self, dropped: int) -> None:
        self.dropped = dropped

    def write(self, frame: Frame) -> None:
        raise AssertionError("not written to in this test")

    def close(self) -> None:
        pass

    def packet_drops(self) -> dict[str, int]:
        return {"rtsp:rtsp://***@10.0.0.9/out": self.dropped}


def test_packet_drops_reach_the_stats_line_summary_json_and_metrics() -> None:
    s = busy_stats("gate")
    plain = busy_stats("lobby")
    plain.attach_sink(SinkGroup([]))  # files and segments: nothing to report, nothing shown
    plain.attach_sink(object())  # a test's or an embedder's sink without the method: same
    s.attach_sink(SinkGroup([Publisher(4)]))
    s.attach_sink(Publisher(3))  # the camera was restarted with new outputs: counts go on
    snap = s.snapshot()
    assert snap.packets_dropped == {"rtsp:rtsp://***@10.0.0.9/out": 7}
    assert snap.dropped == 5, "packets are not frames: the frame drops are unchanged"
    assert "pkt_drop=7" in snap.line() and "pkt_drop" not in plain.snapshot().line()
    assert snap.to_dict()["packets_dropped_total"] == 7
    assert "7 packets not sent" in _summary(s, "running")
    assert "packets not sent" not in _summary(plain, "running")
    samples = parse_prometheus(render([snap, plain.snapshot()]))
    key = frozenset({("camera", "gate"), ("output", "rtsp:rtsp://***@10.0.0.9/out")})
    assert samples[("streamdeid_packets_dropped_total", key)] == 7
    assert not any(
        ("camera", "lobby") in labels
        for name, labels in samples
        if name == "streamdeid_packets_dropped_total"
    )


def test_quantile_is_nearest_rank_and_nan_when_empty() -> None:
    assert math.isnan(quantile([], 0.5))
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile(list(range(1, 101)), 0.95) == 95


def test_json_logs_are_one_object_per_line_with_camera_and_event() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging(logging.INFO, "json", stream)
    try:
        logging.getLogger("streamdeid.live.test").warning(
            "lost %s", "rtsp://x", extra={"camera": "lobby", "event": "disconnected"}
        )
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("streamdeid.live.test").exception("crash", extra={"camera": "c"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "lost rtsp://x" and first["level"] == "warning"
    assert first["camera"] == "lobby" and first["event"] == "disconnected"
    assert "RuntimeError: boom" in second["exc"]
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)
