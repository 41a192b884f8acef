"""What a batch works on: INPUT arguments (files, folders, lists of paths or URLs) -> jobs.

* a video or image file is one job, written as its own name;
* a folder is searched recursively for videos and images, which keep their path below it;
* any other file is a list: one path or URL per line, ``#`` comments and blank lines skipped,
  relative paths relative to the list's folder (a listed folder is searched as above);
* a URL is one job, named after the last part of its path.

Paths are made absolute: workers need not share the driver's working directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from streamdeid.errors import ConfigError, InputNotFoundError, NotAVideoError, SourceError
from streamdeid.io.source import IMAGE_SUFFIXES, VIDEO_SUFFIXES

MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
URL_DEFAULT_SUFFIX = ".mp4"


@dataclass(frozen=True, slots=True)
class Job:
    """One input and where its output goes, relative to the output folder (POSIX separators)."""

    input: str
    output: str

    @property
    def is_url(self) -> bool:
        return "://" in self.input


def expand_inputs(inputs: list[str], out_dir: str | os.PathLike[str]) -> list[Job]:
    """Every job named by ``inputs``, in order, each input once.

    Raises:
        InputNotFoundError: an input or listed path does not exist.
        NotAVideoError: nothing to do (no video or image found).
        ConfigError: two inputs would be written to the same output.
    """
    out = Path(out_dir).resolve()
    jobs: dict[str, Job] = {}
    for arg in inputs:
        for job in _expand(arg, out, allow_list=True):
            jobs.setdefault(job.input, job)
    if not jobs:
        raise NotAVideoError(
            f"expected videos or images in {', '.join(inputs) or 'INPUT'}, found none"
        )
    by_output: dict[str, str] = {}
    for job in jobs.values():
        other = by_output.setdefault(job.output, job.input)
        if other != job.input:
            raise ConfigError(
                f"'{other}' and '{job.input}' would both be written to '{job.output}': "
                "expected inputs with different names (give their folder instead)"
            )
    return list(jobs.values())


def _expand(arg: str, out: Path, *, allow_list: bool, base: Path | None = None) -> Iterator[Job]:
    if "://" in arg:
        yield Job(arg, _url_name(arg))
        return
    path = Path(arg).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    path = path.resolve()
    if path.is_dir():
        yield from _folder(path, out)
    elif not path.exists():
        raise InputNotFoundError(f"input not found: expected a file, folder or URL, got '{arg}'")
    elif path.suffix.lower() in MEDIA_SUFFIXES:
        yield Job(str(path), path.name)
    elif allow_list:
        for line in _list_lines(path):
            yield from _expand(line, out, allow_list=False, base=path.parent)
    else:
        raise NotAVideoError(
            f"'{path}': expected a video or image in the list, got a file of another kind"
        )


def _folder(folder: Path, out: Path) -> Iterator[Job]:
    """Media files below ``folder`` (not below the output folder), sorted by path."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in MEDIA_SUFFIXES:
            continue
        rel = path.relative_to(folder)
        if path.is_relative_to(out) or any(part.startswith(".") for part in rel.parts):
            continue  # our own outputs and parts, hidden files
        yield Job(str(path), rel.as_posix())


def _list_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(
            f"'{path}': expected a video, an image or a text list of inputs, got an unreadable "
            f"file ({e})"
        ) from e
    return [s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")]


def _url_name(url: str) -> str:
    """The output name of a URL: the last part of its path, with a media suffix."""
    name = PurePosixPath(urlsplit(url).path).name or "stream"
    if PurePosixPath(name).suffix.lower() not in MEDIA_SUFFIXES:
        name += URL_DEFAULT_SUFFIX
    return name
