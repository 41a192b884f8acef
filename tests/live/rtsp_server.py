"""A real RTSP server for the live tests: GStreamer's ``gst-rtsp-server``, driven from Python.

Run it with the *system* interpreter (``/usr/bin/python3``): PyGObject (``gi``) and the GStreamer
typelibs come from Debian packages and are not in the project's venv. It serves

* ``rtsp://127.0.0.1:PORT/cam``: an H.264 MP4 (``--file``) played at its native rate. Every
  client gets its own pipeline, so a client that reconnects starts from the beginning again.
* ``rtsp://127.0.0.1:PORT/out``: a RECORD mount that accepts a publisher (our ``RtspSink``,
  ``ffmpeg -f rtsp``), and ``rtsp://127.0.0.1:PORT/relay``, which plays whatever is being
  published there. The relay is how a test reads back what it pushed, through a real RTSP
  client, without a second server.

It prints ``READY rtsp://127.0.0.1:PORT`` on stdout once it listens (``--port 0`` picks a free
port; the line tells which), and exits 0 on SIGTERM or SIGINT. Usage::

    /usr/bin/python3 tests/live/rtsp_server.py --file clip.mp4 --port 0
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

log = logging.getLogger("rtsp_server")

H264_AU = "video/x-h264,stream-format=byte-stream,alignment=au"


def file_launch(path: str) -> str:
    """Launch line that plays ``path`` once at its native rate (the server paces by pts).

    Deliberately no ``concat`` to play it several times: with GStreamer 1.22, a ``concat``
    media hangs in preroll for about one DESCRIBE in three. Tests that need a long stream
    generate a long clip instead.
    """
    location = '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'  # launch syntax
    return (
        f"( filesrc location={location} ! qtdemux name=d d.video_0 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


class Relay:
    """Forwards the H.264 access units published on the RECORD mount to the relay clients.

    The record pipeline ends in an ``appsink``; each relay client gets its own pipeline that
    starts with a live ``appsrc`` stamping buffers on arrival. When the publisher leaves, every
    relay client gets end-of-stream, so a reader sees EOF instead of waiting for its timeout.
    GStreamer calls us from its streaming threads, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._srcs: list[Gst.Element] = []

    def on_record_media(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        sink = media.get_element().get_by_name("sink")
        sink.connect("new-sample", self._on_sample)
        media.connect("unprepared", self._on_publisher_gone)
        log.info("publisher connected")

    def on_relay_media(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        src = media.get_element().get_by_name("src")
        with self._lock:
            self._srcs.append(src)
        media.connect("unprepared", self._on_relay_gone, src)
        log.info("relay client connected")

    def _on_relay_gone(self, _media: object, src: Gst.Element) -> None:
        with self._lock:
            if src in self._srcs:
                self._srcs.remove(src)

    def _on_publisher_gone(self, _media: object) -> None:
        with self._lock:
            srcs, self._srcs = self._srcs, []
        for src in srcs:
            src.emit("end-of-stream")
        log.info("publisher left; ended %d relay stream(s)", len(srcs))

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        with self._lock:
            srcs = list(self._srcs)
        for src in srcs:
            buffer = sample.get_buffer().copy()  # new metadata, shared memory
            buffer.pts = Gst.CLOCK_TIME_NONE  # the live appsrc stamps it on arrival
            buffer.dts = Gst.CLOCK_TIME_NONE
            src.emit("push-buffer", buffer)
        return Gst.FlowReturn.OK


def build_server(port: int, path: str | None) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    # One thread per client: with the default single thread, a relay client waiting in
    # DESCRIBE for the first published frame would block the publisher that sends it.
    server.get_thread_pool().set_max_threads(8)
    mounts = server.get_mount_points()

    if path is not None:
        cam = GstRtspServer.RTSPMediaFactory()
        cam.set_launch(file_launch(path))
        cam.set_shared(False)
        mounts.add_factory("/cam", cam)

    relay = Relay()
    record = GstRtspServer.RTSPMediaFactory()
    record.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
    record.set_launch(
        f"( rtph264depay name=depay0 ! {H264_AU} ! appsink name=sink emit-signals=true sync=false )"
    )
    record.connect("media-configure", relay.on_record_media)
    mounts.add_factory("/out", record)

    play = GstRtspServer.RTSPMediaFactory()
    play.set_launch(
        f"( appsrc name=src is-live=true format=time do-timestamp=true caps={H264_AU} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    play.set_shared(False)
    play.connect("media-configure", relay.on_relay_media)
    mounts.add_factory("/relay", play)
    server.relay = relay  # keep it alive as long as the server
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--file", help="H.264 MP4 to serve on /cam")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

    Gst.init(None)
    server = build_server(args.port, args.file)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        log.error("cannot listen on 127.0.0.1:%s", args.port)
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)
    loop.run()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
