"""Loading a ``.tflite`` model of the mediapipe wheel with LiteRT: one place for BlazeFace and
the face mesh (:mod:`streamdeid.obscure.landmarks`), so both fail with the same messages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from streamdeid.detect.native_logs import quiet_native_logs, stderr_silenced
from streamdeid.errors import DetectorError


def load_interpreter(path: Path, threads: int, what: str) -> tuple[Any, dict, list[dict]]:
    """The allocated interpreter of ``path``, its first input, and its outputs, largest last
    dimension first (the order both models' callers pick their tensors by).

    Raises:
        DetectorError: the file is missing (naming the mediapipe release that ships it), or
            LiteRT is missing or cannot load it.
    """
    if not path.exists():
        raise DetectorError(f"{what} model not found: expected {path} (mediapipe==0.10.14)")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:  # pragma: no cover - required dependency
        raise DetectorError(f"ai-edge-litert is not installed: {e}") from e
    quiet_native_logs()
    try:
        with stderr_silenced():
            interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise DetectorError(f"cannot load {what} model {path.name}: {e}") from e
    inp = interpreter.get_input_details()[0]
    outs = sorted(interpreter.get_output_details(), key=lambda o: -int(o["shape"][-1]))
    return interpreter, inp, outs
