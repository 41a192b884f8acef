"""The package has no import cycle and no import from a higher layer (tools/check_imports.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "check_imports.py"
PACKAGE = REPO / "streamdeid"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(package)], capture_output=True, text=True, check=False
    )


def test_the_package_has_no_import_cycle() -> None:
    result = _run(PACKAGE)
    assert result.returncode == 0, result.stdout


def test_no_module_imports_a_higher_layer() -> None:
    tool = _tool()
    graph = tool.import_graph(PACKAGE)
    assert tool.layer_violations(graph, tool.STREAMDEID_LAYERS) == []


def test_the_only_cycle_left_is_the_cli_one() -> None:
    # Until the CLI refactor lands; then test_the_package_has_no_import_cycle covers it.
    tool = _tool()
    cycles = tool.find_cycles(tool.import_graph(PACKAGE))
    assert all(m.endswith("cli") for cycle in cycles for m in cycle), cycles


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / next(iter(files)).split("/")[0]


def test_a_cycle_through_a_function_level_import_is_reported_with_its_path(tmp_path) -> None:
    package = _write(
        tmp_path,
        {
            "toy/__init__.py": "from toy.a import f\n",
            "toy/a.py": "from toy import b\n\ndef f():\n    return b\n",
            "toy/b.py": "def g():\n    from .c import h\n    return h\n",  # lazy, relative
            "toy/c.py": "import toy.a\n\ndef h():\n    return toy.a\n",
            "toy/d.py": "from toy.a import f\n",  # imports the cycle, not part of it
        },
    )
    result = _run(package)
    assert result.returncode == 1
    assert "import cycle: toy.a -> toy.b -> toy.c -> toy.a" in result.stdout
    assert "toy.d" not in result.stdout


def test_a_package_reexporting_its_modules_is_no_cycle(tmp_path) -> None:
    package = _write(
        tmp_path,
        {
            "toy/__init__.py": "from toy.a import f\n",
            "toy/a.py": "from toy import b\n\ndef f():\n    return b.g\n",
            "toy/b.py": "def g():\n    return 1\n",
        },
    )
    result = _run(package)
    assert result.returncode == 0, result.stdout


def test_an_import_of_a_higher_layer_is_reported() -> None:
    tool = _tool()
    graph = {"streamdeid.config": {"streamdeid.api"}, "streamdeid.api": {"streamdeid.config"}}
    graph["streamdeid.newthing"] = set()
    problems = tool.layer_violations(graph, tool.STREAMDEID_LAYERS)
    assert any("streamdeid.config (core) imports streamdeid.api (api)" in p for p in problems)
    assert any("streamdeid.newthing: in no layer" in p for p in problems)
