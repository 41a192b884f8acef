"""Wire-level ONNX shape editing: exact on hand-built models, and the real CenterFace model runs."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from streamdeid.detect.onnx_shape import io_names, io_shapes, set_io_shapes
from streamdeid.errors import DetectorError, MissingExtraError


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def msg(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def num(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def value_info(name: str, dims: list[int]) -> bytes:
    shape = b"".join(msg(1, num(1, d)) for d in dims)
    tensor_type = num(1, 1) + msg(2, shape)  # elem_type FLOAT, shape
    return msg(1, name.encode()) + msg(2, msg(1, tensor_type))


NODE = msg(1, b"x") + msg(1, b"w") + msg(2, b"y") + msg(4, b"Conv")  # untouched by the edit
WEIGHT = num(1, 4) + num(2, 1) + msg(8, b"w") + msg(9, bytes(range(16)))  # TensorProto "w"


def tiny_model(x_dims: list[int] | None = None) -> bytes:
    """ModelProto shaped like the CenterFace export: fixed batch, weights listed as inputs."""
    graph = (
        msg(1, NODE)
        + msg(2, b"tiny")
        + msg(5, WEIGHT)
        + msg(11, value_info("x", x_dims or [10, 3, 32, 32]))
        + msg(11, value_info("w", [4]))
        + msg(12, value_info("y", [10, 1, 8, 8]))
    )
    return num(1, 4) + msg(2, b"pytorch") + msg(7, graph) + msg(8, num(2, 9))


def test_shapes_are_rewritten_and_everything_else_is_kept_byte_for_byte() -> None:
    model = tiny_model()
    assert io_shapes(model) == {"x": [10, 3, 32, 32], "w": [4], "y": [10, 1, 8, 8]}
    out = set_io_shapes(model, {"x": (1, None, "h", "w"), "y": (1, None, "h/4", "w/4")})
    assert io_shapes(out) == {"x": [1, 3, "h", "w"], "y": [1, 1, "h/4", "w/4"]}
    assert io_names(out) == {"inputs": ["x"], "outputs": ["y"]}
    # The node, the weight bytes and the model-level fields around the graph are untouched.
    assert msg(1, NODE) in out and msg(5, WEIGHT) in out
    assert out.startswith(num(1, 4) + msg(2, b"pytorch")) and out.endswith(msg(8, num(2, 9)))
    # Idempotent: editing the edited model to the same shapes changes nothing.
    again = set_io_shapes(out, {"x": (1, None, "h", "w"), "y": (1, None, "h/4", "w/4")})
    assert again == out


def test_initializer_inputs_are_kept_on_request() -> None:
    out = set_io_shapes(tiny_model(), {"x": (1, 3, 64, 64)}, drop_initializer_inputs=False)
    assert io_shapes(out)["w"] == [4] and io_shapes(out)["x"] == [1, 3, 64, 64]
    assert io_names(out)["inputs"] == ["x"]  # io_names never lists weights as inputs


@pytest.mark.parametrize(
    ("model", "shapes", "expectation"),
    [
        (tiny_model(), {"x": (1, 3, "h", "w")}, does_not_raise()),
        (b"not an onnx model", {}, pytest.raises(DetectorError, match="wire type")),
        (b"", {}, pytest.raises(DetectorError, match="expected one graph")),
        (tiny_model()[:-40], {}, pytest.raises(DetectorError, match=r"claims \d+ bytes")),
        (b"\x08\xff\xff", {}, pytest.raises(DetectorError, match="truncated varint")),
        (
            tiny_model(),
            {"input.1": (1, 3, "h", "w")},
            pytest.raises(DetectorError, match=r"\['input.1'\], found inputs \['x'\]"),
        ),
        (tiny_model(), {"x": (1, "h", "w")}, pytest.raises(DetectorError, match="4 dimensions")),
        (tiny_model(), {"x": (1, 3, -2, 4)}, pytest.raises(ValueError, match="int >= 0")),
        (tiny_model(), {"x": (1, 3, "", 4)}, pytest.raises(ValueError, match="non-empty str")),
    ],
)
def test_malformed_models_and_bad_shapes_give_clear_errors(
    model: bytes, shapes: dict, expectation: object
) -> None:
    with expectation:  # type: ignore[attr-defined]
        set_io_shapes(model, shapes)


def test_malformed_model_errors_are_one_line_detector_errors() -> None:
    with pytest.raises(DetectorError) as info:
        io_shapes(b"\x3a\x05ab")
    assert "\n" not in str(info.value) and "not a valid ONNX model" in str(info.value)


@pytest.fixture(scope="module")
def centerface_bytes() -> bytes:
    from streamdeid.detect.centerface import find_model

    try:
        return find_model().read_bytes()
    except MissingExtraError as e:
        pytest.skip(str(e))


def test_real_centerface_model_runs_in_onnxruntime_at_two_sizes(centerface_bytes: bytes) -> None:
    ort = pytest.importorskip("onnxruntime")
    shapes = io_shapes(centerface_bytes)
    assert shapes["input.1"] == [10, 3, 32, 32]  # why the edit is needed
    assert len(shapes) > 100  # every weight is listed as a graph input
    out = set_io_shapes(
        centerface_bytes,
        {"input.1": (1, None, "h", "w")}
        | {o: (1, None, "h/4", "w/4") for o in ("537", "538", "539", "540")},
    )
    assert io_names(out) == {"inputs": ["input.1"], "outputs": ["537", "538", "539", "540"]}
    assert len(io_shapes(out)) == 5
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(out, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(64, 96), (160, 128)]:
        blob = rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32)
        heat, size, offset, landmarks = session.run(None, {"input.1": blob})
        assert heat.shape == (1, 1, h // 4, w // 4) and landmarks.shape == (1, 10, h // 4, w // 4)
        assert size.shape == offset.shape == (1, 2, h // 4, w // 4)
        assert np.all((heat >= 0) & (heat <= 1))  # the sigmoid heatmap, so weights are intact
