"""Test doubles and measurements shared by the test modules (not fixtures: plain functions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamdeid.config import Config
from streamdeid.detect.base import Detector
from streamdeid.types import Detections, Frame


class ScriptedDetector(Detector):
    """Returns pre-scripted boxes by frame index.

    ``script[i]`` is the list of xyxy boxes for frame ``i``; ``raise_on`` lists frames that
    raise instead, to exercise the detector-failure path. ``calls`` records which frames the
    pipeline asked about.
    """

    name = "scripted"

    def __init__(
        self, script: Sequence[Sequence[Sequence[float]]], raise_on: Sequence[int] = ()
    ) -> None:
        self.script = [np.asarray(b, np.float32).reshape(-1, 4) for b in script]
        self.raise_on = set(raise_on)
        self.calls: list[int] = []

    def detect(self, frame: Frame | np.ndarray) -> Detections:
        if not isinstance(frame, Frame):
            raise TypeError("ScriptedDetector needs a Frame (it looks boxes up by frame index)")
        i = frame.index
        self.calls.append(i)
        if i in self.raise_on:
            raise RuntimeError(f"scripted failure on call {i}")
        boxes = self.script[i] if i < len(self.script) else np.zeros((0, 4), np.float32)
        return Detections(boxes.copy(), np.ones(len(boxes), np.float32))


def decode_frames(path: str) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def probe(path: str) -> dict[str, object]:
    """Frame count, pts list, size, rotation and audio packet pts of a media file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        info: dict[str, object] = {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "pts": [f.pts for f in frames],
            "times": [round(float(f.pts * f.time_base), 3) for f in frames],
            "rotation": frames[0].rotation if frames else 0,
            "audio_codec": c.streams.audio[0].codec_context.name if c.streams.audio else None,
        }
    if info["audio_codec"]:
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            info["audio_pts"] = [p.pts for p in c.demux(a) if p.size]
    return info


def masked_share(
    original: np.ndarray, output: np.ndarray, box: Sequence[float], level: int = 12
) -> float:
    """Share of a box's pixels whose grey level changed by more than ``level`` (EVALUATION.md)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    a = original[y1:y2, x1:x2].astype(np.int16).mean(axis=2)
    b = output[y1:y2, x1:x2].astype(np.int16).mean(axis=2)
    if a.size == 0:
        return 1.0
    return float((np.abs(a - b) > level).mean())


def solid(config: Config | None = None, **overrides: object) -> Config:
    return (config or Config()).override({"obscure.method": "solid", **overrides})


def unmasked(
    original: list[np.ndarray], output: list[np.ndarray], gt: list[dict], min_share: float = 0.6
) -> list[tuple[int, list[int], float]]:
    """Every (frame, box, share) where less than ``min_share`` of a GT box was changed."""
    assert len(original) == len(output) == len(gt)
    misses = []
    for i, (a, b, truth) in enumerate(zip(original, output, gt, strict=True)):
        for box in truth["boxes"]:
            share = masked_share(a, b, box)
            if share < min_share:
                misses.append((i, box, round(share, 2)))
    return misses


def split_by_edge(gt: list[dict], width: int, height: int) -> tuple[list[dict], list[dict]]:
    """GT with only whole faces, and GT with only faces cut by the frame edge."""

    def cut(b: list[int]) -> bool:
        return b[0] <= 0 or b[1] <= 0 or b[2] >= width or b[3] >= height

    whole = [{**f, "boxes": [b for b in f["boxes"] if not cut(b)]} for f in gt]
    edge = [{**f, "boxes": [b for b in f["boxes"] if cut(b)]} for f in gt]
    return whole, edge


PASS = b"correct horse battery staple"


def reversible_recording(synthetic: tuple[Path, list[dict]], folder: Path) -> dict[str, Any]:
    """The synthetic clip masked with reversible originals (ground-truth boxes), in ``folder``,
    with a reviewer key pair and a site signing key pair (passphrase :data:`PASS`) in
    ``folder/keys``, the video and sidecar in ``folder/out``: what every reveal, grant and
    audit test starts from."""
    from streamdeid import anonymize_file
    from streamdeid.audit import AuditContext
    from streamdeid.crypto import generate_keypair
    from streamdeid.crypto.signing import generate_signing_key, load_signing_key

    clip, gt = synthetic
    keys = folder / "keys"
    keys.mkdir()
    generate_keypair(keys / "r.key", keys / "r.pub", PASS)
    generate_signing_key(keys / "site.sign.key", keys / "site.sign.pub", PASS)
    out_dir = folder / "out"  # the recording's files only: tests search them for plaintext
    out_dir.mkdir()
    masked = out_dir / "masked.mp4"
    config = Config().override(
        {"reversible.enabled": True, "reversible.recipients": [str(keys / "r.pub")]}
    )
    boxes = [f["boxes"] for f in gt]
    anonymize_file(clip, masked, config, detector_factory=lambda: ScriptedDetector(boxes))
    return {
        "clip": clip,
        "masked": masked,
        "out_dir": out_dir,
        "keys": keys,
        "key": keys / "r.key",
        "pub": keys / "r.pub",
        "signing": keys / "site.sign.key",
        "sign_pub": keys / "site.sign.pub",
        "ctx": AuditContext(load_signing_key(keys / "site.sign.key", PASS)),
    }
