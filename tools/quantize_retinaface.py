"""Derive the int8 RetinaFace models in streamdeid/detect/models from the vendored float model.

Why int8: convolutions are 94% of a RetinaFace call, and onnxruntime runs them in int8 ~1.5x
faster on one core (benchmarks/detectors.py has the figures). The backbone's first stage
(``/fx/stage1``: the high-resolution, few-channel layers) stays in float: quantized, it cost ~10
points of recall and saved no time. So does the final softmax. The rest is static QDQ,
per-channel weights.

Two files, one per kind of CPU (``streamdeid.detect.retinaface.int8_variant`` picks):

* ``retinaface_mnet025_int8.onnx``, 8-bit weights, for CPUs whose int8 dot products sum into
  32 bits (x86 with VNNI, ARM). Its masked recall is within a few faces of the float model's;
* ``retinaface_mnet025_int8_w7.onnx``, 7-bit weights (onnxruntime's ``reduce_range``), for x86
  CPUs without VNNI: they add pairs of byte products into saturating 16-bit sums, which 8-bit
  weights can overflow and 7-bit ones cannot. ~1 point of recall below the float model.

Activation ranges are calibrated on public-domain pictures only: scikit-image's sample images
(NASA's astronaut, CC0 and public-domain photos) and the bundled sample clip, each at one of the
input sizes the detector uses. Nothing research-only shapes the shipped file.

Quantizing needs the ``onnx`` package, which must stay out of the runtime environment (its
protobuf requirement fights mediapipe's). So the script builds the calibration blobs here, then
makes a throwaway venv with pinned ``onnx`` and ``onnxruntime``, and quantizes in it. Run it
from a checkout with registry access; it checks the result against the SHA-256 that the
detector verifies at load time (``--accept`` takes a new digest, e.g. after a version bump):

    .venv/bin/python tools/quantize_retinaface.py
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "streamdeid" / "detect" / "models"
# Pinned so that the same float model and pictures give the same bytes.
QUANTIZER = ("onnx==1.23.2", "onnxruntime==1.32.0", "numpy==2.4.6")
# Kept in float: the first stage (see above) and the softmax, so scores keep their resolution
# near the low thresholds we use (int8 would step them by 1/255).
FLOAT_NODES = ("/fx/stage1/", "/Softmax")
# (rows, columns) the detector feeds the network: the cheap pass, a part of the periodic pass,
# a 720p full pass, a small-video cheap pass.
SIZES = ((384, 672), (320, 1312), (736, 1280), (352, 640))
SKIMAGE_PICTURES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "retina.jpg",
    "camera.png",
    "horse.png",
    "brick.png",
    "hubble_deep_field.jpg",
    "color.png",
    "grass.png",
    "gravel.png",
    "page.png",
    "text.png",
)
SAMPLE = REPO / "samples" / "astronaut_pan.mp4"
SAMPLE_EVERY = 10


def calibration_blobs() -> list[np.ndarray]:
    """Network inputs (BGR minus the model's mean, NCHW) of every calibration picture."""
    import av
    import cv2
    import skimage

    from streamdeid.detect.fullconv import nchw_blob
    from streamdeid.detect.retinaface import MEAN_BGR

    data = Path(skimage.__file__).parent / "data"
    pictures = []
    for name in SKIMAGE_PICTURES:
        picture = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        if picture is None:
            raise SystemExit(f"cannot read scikit-image's {name} from {data}")
        pictures.append(picture)
    with av.open(str(SAMPLE)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % SAMPLE_EVERY == 0:
                pictures.append(frame.to_ndarray(format="bgr24"))
    return [
        nchw_blob(cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA), MEAN_BGR)
        for p, (h, w) in zip(pictures, SIZES * len(pictures), strict=False)
    ]


def quantize(source: Path, blobs: Path, target: Path, weight_bits: int) -> None:
    """Runs inside the throwaway venv: opset 13 (per-channel QDQ needs it), then static QDQ."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            with np.load(blobs) as saved:
                self._inputs = iter([{"input": saved[k]} for k in sorted(saved, key=int)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._inputs, None)

    opset13, prepared = target.with_suffix(".op13.onnx"), target.with_suffix(".pre.onnx")
    onnx.save(version_converter.convert_version(onnx.load(source), 13), opset13)
    quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(prepared).graph
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=weight_bits == 7,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=[n.name for n in graph.node if n.name.startswith(FLOAT_NODES)],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accept", action="store_true", help="write the files whatever their digest")
    ap.add_argument("--inside", nargs=4, help=argparse.SUPPRESS)  # SOURCE BLOBS TARGET BITS
    args = ap.parse_args(argv)
    if args.inside:
        *paths, bits = args.inside
        quantize(*(Path(p) for p in paths), int(bits))
        return 0

    sys.path.insert(0, str(REPO))
    from streamdeid.detect.retinaface import MODEL_FILE, MODELS

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        blobs = calibration_blobs()
        np.savez(work / "blobs.npz", **{str(i): b for i, b in enumerate(blobs)})
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", *QUANTIZER], check=True)
        made = {}
        for variant, bits in (("int8", 8), ("int8-w7", 7)):
            target = work / MODELS[variant][0]
            source, saved = str(MODELS_DIR / MODEL_FILE), str(work / "blobs.npz")
            subprocess.run(
                [python, __file__, "--inside", source, saved, str(target), str(bits)], check=True
            )
            made[variant] = target.read_bytes()
    wrong = 0
    for variant, data in made.items():
        name, expected, _ = MODELS[variant]
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected and not args.accept:
            print(f"{name}: expected sha256 {expected}, got {digest}", file=sys.stderr)
            wrong += 1
            continue
        (MODELS_DIR / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes, {len(blobs)} pictures, sha256 {digest})")
    if wrong:
        print("--accept writes them", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
