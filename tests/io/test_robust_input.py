"""Real-world inputs: every file FFmpeg can decode is anonymized whole, timed and playable.

Each corpus file (tests/io/corpus.py) goes through the real command line into MP4 and MKV (and
AVI where archives use it). The detector is replaced by one that reads each picture's number and
returns its true face boxes, so that what is measured is the input handling: frames in = frames
out, output pts strictly increasing, the output decodes without an error, every face on every
frame masked, audio kept, and the run saying what it repaired (and nothing for a clean file).
"""

from __future__ import annotations

import errno
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import av.error
import pytest

from streamdeid.cli import main
from streamdeid.io.source import FileSource

from corpus import MAKERS, Clip, audio_only, decode, dvr_avi, outputs, undecodable, zero_frames
from frame_code import CodeDetector, read_code
from helpers import masked_share, split_by_edge

# What the run must say it repaired, per file; every other file must report nothing.
EXPECTED_REPAIRS = {
    "avi_h264_bframes": ["timing repaired: "],
    "h264_raw_no_pts": ["timing repaired: 30 frames had missing or out-of-order pts"],
    "ts_discontinuity": ["2 clock restart(s) closed"],
    "ts_pts_wrap": ["timestamps moved by 0.500 s to start at 0"],
    "ts_corrupt_packets": ["decoded with errors concealed"],
    "mp4_corrupt_packets": ["packet(s) that failed to decode skipped"],
}
CASES = [(name, suffix) for name in MAKERS for suffix in outputs(name)]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Clip]:
    """Makes each corpus file once per session, when a test first asks for it."""
    folder = tmp_path_factory.mktemp("corpus")
    made: dict[str, Clip] = {}

    def get(name: str) -> Clip:
        if name not in made:
            made[name] = MAKERS[name](folder)
        return made[name]

    return get


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, clip: Clip
) -> tuple[int, str]:
    """``streamdeid run`` with the picture-number detector; returns exit code and stderr."""
    monkeypatch.setattr("streamdeid.api.make_detector", lambda config: CodeDetector(clip.boxes))
    code = main(["run", *args, "--no-progress", "--method", "solid"])
    return code, capsys.readouterr().err


def audio_seconds(path: Path) -> tuple[float, float] | None:
    """When the audio starts, and the total duration of its packets; None without audio."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
        ticks = sum(p.duration or 0 for p in packets)
        return float(packets[0].pts * stream.time_base), float(ticks * stream.time_base)


def unmasked_faces(clip: Clip, originals: list, outputs: list) -> list[tuple[int, list, float]]:
    """Faces (picture number, box, share changed) less than 60 % masked in the output."""
    misses = []
    for before, after in zip(originals, outputs, strict=True):
        number = read_code(before)
        if number is None:  # a picture the damage reached: its number is gone
            continue
        # A mask may cover the number (a coasting face's box grows), never change it.
        assert read_code(after) in (number, None), "output frames are not the input's, in order"
        misses += [
            (number, box, share)
            for box in clip.boxes[number]
            if (share := masked_share(before, after, box)) < 0.6
        ]
    return misses


@pytest.mark.parametrize(("name", "suffix"), CASES)
def test_every_frame_kept_timed_masked_and_reported(
    corpus, tmp_path: Path, capsys, monkeypatch, name: str, suffix: str
) -> None:
    clip = corpus(name)
    out, stats_file = tmp_path / f"out{suffix}", tmp_path / "stats.json"
    code, err = run(
        [str(clip.path), "-o", str(out), "--stats", str(stats_file)], capsys, monkeypatch, clip
    )
    assert code == 0, err
    stats = json.loads(stats_file.read_text())

    originals, times_in = decode(clip.path)
    outputs, times_out = decode(out, strict=True)  # playable: decodes without an error
    assert stats["frames"] == len(originals) == len(outputs) > 0
    assert None not in times_out
    assert all(b > a for a, b in itertools.pairwise(times_out)), times_out
    assert unmasked_faces(clip, originals, outputs) == []
    checked = sum(read_code(image) is not None for image in originals)
    assert checked >= 0.6 * len(originals)

    expected = EXPECTED_REPAIRS.get(name, [])
    assert len(stats["repairs"]) >= len(expected)
    for phrase in expected:
        assert any(phrase in note for note in stats["repairs"]), stats["repairs"]
        assert phrase in err  # the summary says it too
    if not expected:
        assert stats["repairs"] == [] and "repaired" not in err
        # Timing kept as it was. MKV may move the whole file a little (audio that starts
        # before 0 moves every stream), so the times are compared from the first frame.
        assert [t - times_out[0] for t in times_out] == pytest.approx(
            [t - times_in[0] for t in times_in], abs=0.0015
        )
        assert times_out[0] == pytest.approx(times_in[0], abs=0.05)

    if clip.audio:
        (start_in, seconds_in), audio_out = audio_seconds(clip.path), audio_seconds(out)
        assert audio_out is not None, "audio was dropped"
        start_out, seconds_out = audio_out
        assert seconds_out == pytest.approx(seconds_in, abs=max(0.2, 0.1 * seconds_in))
        # Beside the video as before (re-encoding to AAC adds up to 128 ms of priming).
        assert start_out - times_out[0] == pytest.approx(start_in - times_in[0], abs=0.15)


def test_clock_restarts_do_not_stretch_the_recording(
    corpus, tmp_path: Path, capsys, monkeypatch
) -> None:
    # Three recordings joined: the clock jumps an hour ahead, then back. The output must run
    # 1.2 s like the pictures, not an hour, with the audio beside the video.
    clip = corpus("ts_discontinuity")
    out = tmp_path / "out.mkv"
    code, err = run([str(clip.path), "-o", str(out)], capsys, monkeypatch, clip)
    assert code == 0, err
    _, times = decode(out)
    assert times[-1] - times[0] == pytest.approx(29 / 25, abs=0.002)
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        audio = [p for p in container.demux(stream) if p.size]
        end = float((audio[-1].pts + audio[-1].duration) * stream.time_base)
    assert abs(float(audio[0].pts * stream.time_base) - times[0]) < 0.05
    assert abs(end - (times[-1] + 0.04)) < 0.15


def test_dvr_avi_timing_is_derived_as_ffmpeg_does(
    corpus, tmp_path: Path, capsys, monkeypatch
) -> None:
    # AVI holds decode order only: H.264 with B-frames decodes with its pts permuted. Once the
    # pts went back more often than the packet dts, the dts is used (FFmpeg's best effort):
    # the frames stay one frame interval apart except where it switched.
    clip = corpus("avi_h264_bframes")
    out = tmp_path / "out.mkv"
    code, err = run([str(clip.path), "-o", str(out)], capsys, monkeypatch, clip)
    assert code == 0, err
    _, times_in = decode(clip.path)
    _, times_out = decode(out)
    assert sorted(times_in) != times_in  # the input really is out of order
    steps = [round(b - a, 3) for a, b in itertools.pairwise(times_out)]
    assert steps.count(0.04) >= len(steps) - 2, steps
    assert max(steps) <= 0.08


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (
            audio_only,
            "in.m4a",
            "has no video stream: expected a video or image, found 1 stream(s): audio",
        ),
        (zero_frames, "in.avi", "expected at least one video frame, decoded 0"),
        (
            undecodable,
            "in.avi",
            "expected at least one video frame, decoded 0; 10 packet(s) failed to decode: "
            "Invalid data found when processing input",
        ),
    ],
)
def test_files_without_a_frame_are_one_line_errors(
    tmp_path: Path, capsys, make: Callable[[Path], Path], name: str, message: str
) -> None:
    src = make(tmp_path / name)
    code = main(["run", str(src), "-o", str(tmp_path / "out.mp4"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("streamdeid: error: ")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_dvr_avi_with_the_real_detector(tmp_path: Path, capsys) -> None:
    # The file, end to end as a user runs it: the default config finds and masks every
    # whole face of the B-frame AVI with G.711 audio, into MKV with AAC.
    clip = dvr_avi(tmp_path, size=(640, 360), n=50)
    out = tmp_path / "out.mkv"
    code = main(["run", str(clip.path), "-o", str(out), "--no-progress", "--method", "solid"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "input repaired: timing repaired: " in err
    originals, _ = decode(clip.path)
    outputs, times = decode(out, strict=True)
    assert len(outputs) == len(originals) == 50
    assert all(b > a for a, b in itertools.pairwise(times))
    truth = [{"boxes": boxes} for boxes in clip.boxes]
    whole, _ = split_by_edge(truth, 640, 360)
    assert sum(len(f["boxes"]) for f in whole) > 50
    clip_whole = Clip(clip.name, clip.path, [f["boxes"] for f in whole], clip.audio)
    assert unmasked_faces(clip_whole, originals, outputs) == []
    assert audio_seconds(out)[1] == pytest.approx(audio_seconds(clip.path)[1], abs=0.2)


class BadDisk:
    """Reads like the real container for ``good`` packets, then fails as a bad sector does."""

    def __init__(self, container: av.container.InputContainer, good: int) -> None:
        self._container = container
        self._good = good

    def demux(self, stream: av.VideoStream) -> Iterator[av.Packet]:
        for i, packet in enumerate(self._container.demux(stream)):
            if i == self._good:
                raise av.error.OSError(errno.EIO, "Input/output error")
            yield packet

    def close(self) -> None:
        self._container.close()


def test_a_read_error_ends_the_input_and_keeps_what_was_read(corpus) -> None:
    # As the ffmpeg tool does: what was read before the error is decoded (the decoder is
    # flushed), the run goes on with it, and the report says the input ended early.
    clip = corpus("mkv_truncated")
    with FileSource(clip.path) as source:
        source._container = BadDisk(source._container, good=12)
        frames = list(source.frames())
    assert [read_code(f.image) for f in frames] == list(range(12))
    assert source.read_error == "Input/output error"
    assert "input ended early: Input/output error" in source.repairs()
