"""Why kept originals are the input's packets: per-track video-coded crops, measured.

The alternative considered for compact originals was to encode each track's crops as a video
(the crop of each frame placed on a canvas of the segment's largest box, edge-padded, 48 frames
per segment). This script anonymizes each clip with per-region PNG crops, decrypts them (the
benchmark's own key), encodes them per track with the candidates below and reports bytes ÷ the
masked video, PSNR inside the regions and encode CPU per crop. Compare with the sizes of
``benchmarks/reversible.py`` (source packets: 0.9-1.5x, bit-exact).

Candidates: libx264 4:4:4 at crf 14/16/18 with ``tune=psnr`` (preset veryfast), and lossless
libx264rgb (qp 0). Crops never leave memory.

A second table measures the other lossy design: one full-frame "region video" per recording,
mid-grey outside the masked regions (x264 skips such blocks for next to nothing), 4:2:0 at crf
16/18/20. It shows the floor for any lossy store: on these clips the default config masks a
third to most of the frame (faces padded by ``mask_scale``, grown by look-ahead), so 40 dB inside
the regions costs more than the masked video spends on everything.

Example:
    .venv/bin/python benchmarks/reversible_codecs.py --synthetic
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from _common import table
from reversible import clip_arguments, dev_clips

from streamdeid import anonymize_file, load_config
from streamdeid.api import sidecar_path
from streamdeid.crypto import SidecarReader, generate_keypair, load_private_key

SEGMENT = 48
CANDIDATES = {
    "x264 444 crf14": ("libx264", "yuv444p", {"crf": "14", "preset": "veryfast", "tune": "psnr"}),
    "x264 444 crf16": ("libx264", "yuv444p", {"crf": "16", "preset": "veryfast", "tune": "psnr"}),
    "x264 444 crf18": ("libx264", "yuv444p", {"crf": "18", "preset": "veryfast", "tune": "psnr"}),
    "x264rgb lossless": ("libx264rgb", "bgr24", {"qp": "0", "preset": "veryfast"}),
}


def crops_by_track(clip: Path, work: Path) -> tuple[dict[int, list[np.ndarray]], int]:
    """Per-region originals of a default-config run, and the masked video's size."""
    key_path, pub = work / "b.key", work / "b.pub"
    if not key_path.exists():
        generate_keypair(key_path, pub, b"benchmark-passphrase-only")
    out = work / f"{clip.stem}_regions.mp4"
    config = load_config("default").override(
        {
            "reversible.enabled": True,
            "reversible.recipients": [str(pub)],
            "reversible.originals": "regions",
        }
    )
    anonymize_file(clip, out, config)
    reader = SidecarReader(sidecar_path(out))
    reader.unlock(load_private_key(key_path, b"benchmark-passphrase-only"))
    tracks: dict[int, list[np.ndarray]] = defaultdict(list)
    for region in reader._verified_records(None):  # a benchmark's own key: nothing to audit
        tracks[region.track_id].append(region.pixels)
    return tracks, out.stat().st_size


def encode_segment(crops: list[np.ndarray], codec: str, pix: str, opts: dict) -> list[bytes]:
    h = max(c.shape[0] for c in crops)
    w = max(c.shape[1] for c in crops)
    h, w = h + h % 2, w + w % 2
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, pix
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25)
    enc.options, enc.thread_count = opts, 1
    packets: list[bytes] = []
    for i, c in enumerate(crops):
        canvas = np.pad(c, ((0, h - c.shape[0]), (0, w - c.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(canvas, format="bgr24")
        frame.pts = i
        packets += [bytes(p) for p in enc.encode(frame)]
    return packets + [bytes(p) for p in enc.encode(None)]


def decode_segment(packets: list[bytes], shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    dec = av.CodecContext.create("h264", "r")
    frames = []
    for data in packets:
        frames += dec.decode(av.Packet(data))
    frames += dec.decode(None)
    pairs = zip(frames, shapes, strict=True)
    return [f.to_ndarray(format="bgr24")[: s[0], : s[1]] for f, s in pairs]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def measure(clip: Path, work: Path) -> list[list]:
    tracks, masked = crops_by_track(clip, work)
    n = sum(len(c) for c in tracks.values())
    rows = []
    for name, (codec, pix, opts) in CANDIDATES.items():
        size, cpu, scores = 0, 0.0, []
        for crops in tracks.values():
            for i in range(0, len(crops), SEGMENT):
                seg = crops[i : i + SEGMENT]
                t0 = time.process_time()
                packets = encode_segment(seg, codec, pix, opts)
                cpu += time.process_time() - t0
                size += sum(len(p) for p in packets)
                back = decode_segment(packets, [c.shape for c in seg])
                scores += [psnr(a, b) for a, b in zip(seg, back, strict=True)]
        rows.append(
            [
                clip.name,
                name,
                round(size / masked, 2),
                round(float(np.mean(scores)), 1),
                round(float(np.percentile(scores, 5)), 1),
                round(1000 * cpu / n, 2),
            ]
        )
    return rows


def regions_by_time(clip: Path, work: Path) -> dict[float, list[tuple[int, int, int, int]]]:
    """Where the default config masked each frame (by time in s), from its per-region sidecar."""
    out = work / f"{clip.stem}_regions.mp4"
    reader = SidecarReader(sidecar_path(out))
    reader.unlock(load_private_key(work / "b.key", b"benchmark-passphrase-only"))
    boxes: dict[float, list[tuple[int, int, int, int]]] = defaultdict(list)
    for region in reader._verified_records(None):  # a benchmark's own key: nothing to audit
        boxes[round(float(region.pts * region.time_base), 3)].append(region.xyxy)
    return boxes


def region_video(clip: Path, work: Path, masked: int, crf: int) -> list:
    """Encode the originals' regions on a grey full frame; bytes ÷ masked video and PSNR."""
    from streamdeid.io.source import FileSource

    boxes = regions_by_time(clip, work)
    enc, dec = None, av.CodecContext.create("h264", "r")
    size, cpu, scores, area, pending = 0, 0.0, [], [], []
    with FileSource(clip) as source:
        for i, frame in enumerate(source.frames()):
            image = frame.image
            if enc is None:
                enc = av.CodecContext.create("libx264", "w")
                enc.height, enc.width = image.shape[:2]
                enc.pix_fmt, enc.time_base = "yuv420p", Fraction(1, 25)
                enc.options = {"crf": str(crf), "preset": "veryfast", "tune": "psnr"}
            mask = np.zeros(image.shape[:2], bool)
            for x1, y1, x2, y2 in boxes.get(round(float(frame.pts * frame.time_base), 3), []):
                mask[y1:y2, x1:x2] = True
            canvas = np.full_like(image, 128)
            canvas[mask] = image[mask]
            vf = av.VideoFrame.from_ndarray(canvas, format="bgr24")
            vf.pts = i
            t0 = time.process_time()
            packets = enc.encode(vf)
            cpu += time.process_time() - t0
            pending.append((mask, image))
            area.append(mask.mean())
            for packet in packets:
                size += packet.size
                for back in dec.decode(packet):
                    scores += _region_psnr(back, *pending.pop(0))
    for packet in enc.encode(None) if enc else []:
        size += packet.size
        for back in dec.decode(packet):
            scores += _region_psnr(back, *pending.pop(0))
    n = len(area)
    return [clip.name, f"crf {crf}", round(float(np.mean(area)), 2), round(size / masked, 2),
            round(float(np.mean(scores)), 1), round(1000 * cpu / n, 1)]  # fmt: skip


def _region_psnr(back: av.VideoFrame, mask: np.ndarray, image: np.ndarray) -> list[float]:
    if not mask.any():
        return []
    return [psnr(back.to_ndarray(format="bgr24")[mask], image[mask])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clip_arguments(p)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = dev_clips(args, work)
        rows, whole = [], []
        for clip in clips:
            rows += measure(clip, work)
            masked = (work / f"{clip.stem}_regions.mp4").stat().st_size
            whole += [region_video(clip, work, masked, crf) for crf in (16, 18, 20)]
    head = ["clip", "per-track crops", "x masked video", "PSNR dB", "p5 PSNR", "CPU ms/crop"]
    print(table(head, rows))
    head = ["clip", "region video", "area masked", "x masked video", "PSNR dB", "CPU ms/frame"]
    print(table(head, whole))
    return 0


if __name__ == "__main__":
    sys.exit(main())
