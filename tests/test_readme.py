"""The README's Layout section names every module of the package, and nothing that is gone.

A layout that drifts from the tree misleads the next reader more than no layout at all, so the
section is checked like code: each ``name.py`` it mentions must exist in the folder of its line
(``streamdeid/io/ ... sink.py``), and each module must be mentioned.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "streamdeid"


def layout_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def named_paths(block: str) -> set[str]:
    """Paths (relative to the repository) of the modules and folders the block names."""
    names: set[str] = set()
    folder = "streamdeid"
    for line in block.splitlines():
        head = re.match(r"^(\S+)", line)
        if head:  # a new entry: "streamdeid/io/  ..." or "streamdeid/api.py  ..."
            entry = head.group(1).rstrip("/")
            folder = entry if not entry.endswith(".py") else str(Path(entry).parent)
            names.add(entry)
        for name in re.findall(r"\b([a-z_][a-z0-9_]*\.py)\b", line):
            if head and head.group(1).endswith(name):
                continue
            names.add(f"{folder}/{name}")
    return names


def test_layout_names_only_what_exists() -> None:
    missing = sorted(p for p in named_paths(layout_block()) if not (REPO / p).exists())
    assert not missing, f"README Layout names paths that do not exist: {missing}"


def test_layout_names_every_module() -> None:
    named = named_paths(layout_block())
    modules = {
        str(p.relative_to(REPO))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    unnamed = sorted(modules - named)
    assert not unnamed, f"README Layout does not mention: {unnamed}"
