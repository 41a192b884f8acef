"""What reversible masking costs: sidecar bytes and speed, next to the same run without it.

For each clip, the same config runs without and with ``--recipient``: originals kept as the
input's packets (``source``, the default for video input, bit-exact), and per-region crops
(``--originals regions``: PNG, bit-exact; with ``--lossy-regions`` JPEG q95), interleaved repeat
by repeat in one process so that the ratios hold on a machine whose speed drifts. Reported per
clip and mode:

* sidecar bytes ÷ masked-video bytes (issue 12 targets: ≤ 0.5 lossy, ≤ 3 lossless);
* bytes per face-second: sidecar bytes ÷ (masked boxes ÷ frame rate), one box being one face
  on one frame;
* fps ratio with/without (target ≥ 0.9) and the extra CPU milliseconds per frame (all threads).

Clips: the dev 1080p clip downscaled to 720p (as benchmarks/throughput.py makes it) and the
hamilton clip from ``../shared/data``; ``--synthetic`` adds a generated 720p clip with two large
faces (no data needed).

Example:
    .venv/bin/python benchmarks/reversible.py --repeat 2 --json rev.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import data_root, machine_info, need_file, table, write_json
from throughput import CLIPS, SOURCE_720P, make_720p

from streamdeid import anonymize_file, load_config
from streamdeid.api import sidecar_path
from streamdeid.crypto import SidecarReader, generate_keypair


def _run(clip: Path, out: Path, config: Any) -> dict[str, float]:
    cpu0, t0 = os.times(), time.perf_counter()
    stats = anonymize_file(clip, out, config)
    wall, cpu1 = time.perf_counter() - t0, os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"frames": stats.frames, "wall_s": wall, "cpu_s": cpu, "bytes": out.stat().st_size}


def _sidecar(out: Path, fps: float) -> dict[str, float]:
    side = sidecar_path(out)
    records = sum(t.count for t in SidecarReader(side).tracks())  # keyless: boxes and counts only
    size = side.stat().st_size
    face_s = records / fps if fps else 0.0
    return {"sidecar_bytes": size, "records": records, "per_face_s": size / face_s if face_s else 0}


def measure(clip: Path, config_name: str, public_key: Path, repeat: int, work: Path) -> list[dict]:
    base = load_config(config_name)
    modes = {
        "off": base,
        "source": base.override(
            {"reversible.enabled": True, "reversible.recipients": [str(public_key)]}
        ),
        "regions_png": base.override(
            {
                "reversible.enabled": True,
                "reversible.recipients": [str(public_key)],
                "reversible.originals": "regions",
            }
        ),
        "regions_jpeg": base.override(
            {
                "reversible.enabled": True,
                "reversible.recipients": [str(public_key)],
                "reversible.originals": "regions",
                "reversible.lossy": True,
            }
        ),
    }
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(repeat):
        for mode, config in modes.items():  # interleaved: off, source, png, jpeg, off, ...
            out = work / f"{clip.stem}_{mode}.mp4"
            runs[mode].append(_run(clip, out, config))
    import av

    with av.open(str(clip)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    rows = []
    off_wall = [r["wall_s"] for r in runs["off"]]
    for mode in ("source", "regions_png", "regions_jpeg"):
        pairs = [o / r["wall_s"] for o, r in zip(off_wall, runs[mode], strict=True)]
        extra_cpu = statistics.median(
            (r["cpu_s"] - o["cpu_s"]) / r["frames"]
            for o, r in zip(runs["off"], runs[mode], strict=True)
        )
        side = _sidecar(work / f"{clip.stem}_{mode}.mp4", fps)
        masked = runs[mode][-1]["bytes"]
        rows.append(
            {
                "clip": clip.name,
                "mode": mode,
                "frames": runs[mode][-1]["frames"],
                "masked_MB": round(masked / 1e6, 2),
                "sidecar_MB": round(side["sidecar_bytes"] / 1e6, 2),
                "sidecar_x_masked": round(side["sidecar_bytes"] / masked, 2),
                "records": side["records"],
                "kB_per_face_s": round(side["per_face_s"] / 1e3, 1),
                "fps_ratio": round(statistics.median(pairs), 2),
                "extra_cpu_ms_per_frame": round(1e3 * extra_cpu, 1),
            }
        )
    return rows


def clip_arguments(p: argparse.ArgumentParser) -> None:
    """The clip choice shared with reversible_codecs.py."""
    p.add_argument("--data", help="the shared data folder (default: ../shared/data)")
    p.add_argument("--synthetic", action="store_true", help="also a generated 720p clip")
    p.add_argument("--no-data", action="store_true", help="only the generated clip")


def dev_clips(args: argparse.Namespace, work: Path) -> list[Path]:
    """The dev 720p clip and the 360p hamilton clip, and/or a generated 720p clip."""
    clips: list[Path] = []
    if not args.no_data:
        root = data_root(args.data)
        clips.append(make_720p(need_file(root, SOURCE_720P), work / "dev720.mp4"))
        clips.append(need_file(root, CLIPS["hamilton"]))
    if args.synthetic or args.no_data:
        from streamdeid.testing.synthetic import synthetic_clip

        clip = work / "synthetic720.mp4"
        synthetic_clip(clip, n_frames=200, size=(1280, 720), seed=1, audio=True)
        clips.append(clip)
    return clips


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clip_arguments(p)
    p.add_argument("--config", default="default")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        key = work / "bench.pub"
        generate_keypair(work / "bench.key", key, passphrase=b"benchmark-passphrase-only")
        clips = dev_clips(args, work)
        rows = [r for c in clips for r in measure(c, args.config, key, args.repeat, work)]
    print(table(list(rows[0]), [list(r.values()) for r in rows]))
    write_json(args.json, {"machine": machine_info(), "config": args.config, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
