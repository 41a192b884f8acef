"""Edit the declared input/output shapes of an ONNX model at the protobuf wire level.

Why not the ``onnx`` package: its current release needs protobuf >= 5, which breaks the protobuf
that mediapipe 0.10.14 pins. The edit we need is tiny (a few dimensions of the graph's inputs and
outputs, plus dropping initializers listed as inputs), so it is done here on the serialized bytes,
copying every other field through untouched, byte for byte.

Only these messages are descended into (field numbers from ``onnx.proto``)::

    ModelProto.graph = 7
    GraphProto.initializer = 5 (TensorProto.name = 8), .input = 11, .output = 12
    ValueInfoProto.name = 1, .type = 2
    TypeProto.tensor_type = 1;  TypeProto.Tensor.shape = 2
    TensorShapeProto.dim = 1;   Dimension.dim_value = 1 (varint), .dim_param = 2 (string)

Example:
    >>> data = Path("centerface.onnx").read_bytes()  # doctest: +SKIP
    >>> data = set_io_shapes(data, {"input.1": (1, None, "h", "w")})  # doctest: +SKIP
    >>> io_shapes(data)["input.1"]  # doctest: +SKIP
    [1, 3, 'h', 'w']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from streamdeid.errors import DetectorError

# A dimension: a fixed size, a symbolic name, or None (keep / unknown).
Dim = int | str | None

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_TENSOR_NAME = 8
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2


class _WireError(ValueError):
    """Malformed protobuf bytes; turned into a DetectorError naming the model at the API edge."""


@dataclass(frozen=True, slots=True)
class _Field:
    number: int
    wire_type: int
    raw: bytes  # the whole field as serialized: tag, length prefix and payload
    payload: bytes  # length-delimited content, or the raw value bytes for other wire types
    value: int = 0  # decoded varint (wire type 0 only)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError(f"{what}: truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise _WireError(f"{what}: varint longer than 10 bytes at byte {pos}")


def _fields(buf: bytes, what: str) -> Iterator[_Field]:
    """Every top-level field of one serialized message, in order."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos, what)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise _WireError(f"{what}: field number 0 at byte {start}")
        value = 0
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos, what)
            payload = buf[start:pos]
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos, what)
            if pos + length > len(buf):
                raise _WireError(
                    f"{what}: field {number} at byte {start} claims {length} bytes, "
                    f"only {len(buf) - pos} left"
                )
            payload, pos = buf[pos : pos + length], pos + length
        elif wire_type in (_I64, _I32):
            size = 8 if wire_type == _I64 else 4
            if pos + size > len(buf):
                raise _WireError(f"{what}: truncated fixed-size field {number} at byte {start}")
            payload, pos = buf[pos : pos + size], pos + size
        else:
            raise _WireError(
                f"{what}: field {number} at byte {start} has wire type {wire_type}, "
                "expected 0, 1, 2 or 5"
            )
        yield _Field(number, wire_type, buf[start:pos], payload, value)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | _LEN) + _varint(len(payload)) + payload


def _string(buf: bytes, what: str) -> str:
    try:
        return buf.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _WireError(f"{what}: name is not UTF-8 ({e})") from e


def _value_info_name(buf: bytes) -> str:
    for f in _fields(buf, "ValueInfoProto"):
        if f.number == _VALUE_INFO_NAME and f.wire_type == _LEN:
            return _string(f.payload, "ValueInfoProto")
    return ""


def _initializer_names(graph: bytes) -> set[str]:
    names = set()
    for f in _fields(graph, "GraphProto"):
        if f.number == _GRAPH_INITIALIZER and f.wire_type == _LEN:
            for g in _fields(f.payload, "TensorProto"):
                if g.number == _TENSOR_NAME and g.wire_type == _LEN:
                    names.add(_string(g.payload, "TensorProto"))
    return names


def _only(buf: bytes, number: int, what: str) -> bytes:
    """Payload of the (last, as protobuf merges) length-delimited field ``number``."""
    found = None
    for f in _fields(buf, what):
        if f.number == number and f.wire_type == _LEN:
            found = f.payload
    if found is None:
        raise _WireError(f"{what}: expected field {number}, found none")
    return found


def _dims(value_info: bytes) -> list[Dim]:
    """The declared shape of a tensor ValueInfoProto (None for an unknown dimension)."""
    type_proto = _only(value_info, _VALUE_INFO_TYPE, "ValueInfoProto")
    tensor = _only(type_proto, _TYPE_TENSOR, "TypeProto")
    shape = _only(tensor, _TENSOR_TYPE_SHAPE, "TypeProto.Tensor")
    dims: list[Dim] = []
    for d in _fields(shape, "TensorShapeProto"):
        if d.number != _SHAPE_DIM or d.wire_type != _LEN:
            continue
        dim: Dim = None
        for v in _fields(d.payload, "Dimension"):
            if v.number == _DIM_VALUE and v.wire_type == _VARINT:
                dim = v.value
            elif v.number == _DIM_PARAM and v.wire_type == _LEN:
                dim = _string(v.payload, "Dimension")
        dims.append(dim)
    return dims


def _check_dim(name: str, dim: object) -> None:
    if dim is None or (isinstance(dim, str) and dim):
        return
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
        raise ValueError(
            f"shape of '{name}': a dimension must be an int >= 0, a non-empty str or None, "
            f"got {dim!r}"
        )


def _encode_dim(dim: int | str) -> bytes:
    if isinstance(dim, str):
        return _len_field(_DIM_PARAM, dim.encode("utf-8"))
    return _varint(_DIM_VALUE << 3 | _VARINT) + _varint(dim)


def _rewrite_shape(shape: bytes, name: str, spec: Sequence[Dim]) -> bytes:
    dims = [d for d in _fields(shape, "TensorShapeProto") if d.number == _SHAPE_DIM]
    if len(dims) != len(spec):
        raise _WireError(f"'{name}' has {len(dims)} dimensions, the new shape has {len(spec)}")
    new_dims = iter(spec)
    out = bytearray()
    for f in _fields(shape, "TensorShapeProto"):
        if f.number != _SHAPE_DIM:
            out += f.raw
            continue
        dim = next(new_dims)
        out += f.raw if dim is None else _len_field(_SHAPE_DIM, _encode_dim(dim))
    return bytes(out)


def _rewrite_field(buf: bytes, number: int, what: str, edit: Callable[[bytes], bytes]) -> bytes:
    """Re-serialize ``buf`` with ``edit`` applied to its length-delimited field ``number``."""
    out, found = bytearray(), False
    for f in _fields(buf, what):
        if f.number == number and f.wire_type == _LEN:
            out += _len_field(number, edit(f.payload))
            found = True
        else:
            out += f.raw
    if not found:
        raise _WireError(f"{what}: expected field {number}, found none")
    return bytes(out)


def _rewrite_value_info(value_info: bytes, name: str, spec: Sequence[Dim]) -> bytes:
    """ValueInfoProto → type → tensor_type → shape, with the dimensions replaced."""

    def shape(buf: bytes) -> bytes:
        return _rewrite_shape(buf, name, spec)

    def tensor(buf: bytes) -> bytes:
        return _rewrite_field(buf, _TENSOR_TYPE_SHAPE, f"'{name}' TypeProto.Tensor", shape)

    def type_proto(buf: bytes) -> bytes:
        return _rewrite_field(buf, _TYPE_TENSOR, f"'{name}' TypeProto", tensor)

    return _rewrite_field(value_info, _VALUE_INFO_TYPE, f"'{name}' ValueInfoProto", type_proto)


def _rewrite_graph(
    graph: bytes, shapes: Mapping[str, Sequence[Dim]], drop_initializer_inputs: bool
) -> bytes:
    initializers = _initializer_names(graph) if drop_initializer_inputs else set()
    pending = dict(shapes)
    out = bytearray()
    for f in _fields(graph, "GraphProto"):
        if f.number in (_GRAPH_INPUT, _GRAPH_OUTPUT) and f.wire_type == _LEN:
            name = _value_info_name(f.payload)
            if f.number == _GRAPH_INPUT and name in initializers:
                continue  # a weight, not a real input: onnxruntime warns about each one
            if name in pending:
                out += _len_field(f.number, _rewrite_value_info(f.payload, name, pending.pop(name)))
                continue
        out += f.raw
    if pending:
        io = _io_names(graph)
        raise _WireError(
            f"expected graph inputs/outputs {sorted(pending)}, found inputs {io['inputs']} "
            f"and outputs {io['outputs']}"
        )
    return bytes(out)


def _graph_of(model: bytes) -> bytes:
    graphs = [
        f.payload
        for f in _fields(model, "ModelProto")
        if f.number == _MODEL_GRAPH and f.wire_type == _LEN
    ]
    if len(graphs) != 1:
        raise _WireError(f"ModelProto: expected one graph (field 7), found {len(graphs)}")
    return graphs[0]


def _io_names(graph: bytes) -> dict[str, list[str]]:
    initializers = _initializer_names(graph)
    names: dict[str, list[str]] = {"inputs": [], "outputs": []}
    for f in _fields(graph, "GraphProto"):
        if f.number in (_GRAPH_INPUT, _GRAPH_OUTPUT) and f.wire_type == _LEN:
            name = _value_info_name(f.payload)
            if f.number == _GRAPH_OUTPUT:
                names["outputs"].append(name)
            elif name not in initializers:
                names["inputs"].append(name)
    return names


def io_names(model: bytes) -> dict[str, list[str]]:
    """Names of the real graph inputs (initializers excluded) and of the outputs."""
    try:
        return _io_names(_graph_of(model))
    except _WireError as e:
        raise DetectorError(f"not a valid ONNX model: {e}") from e


def io_shapes(model: bytes) -> dict[str, list[Dim]]:
    """Declared shapes of every graph input (initializers included) and output, by name."""
    try:
        return {
            _value_info_name(f.payload): _dims(f.payload)
            for f in _fields(_graph_of(model), "GraphProto")
            if f.number in (_GRAPH_INPUT, _GRAPH_OUTPUT) and f.wire_type == _LEN
        }
    except _WireError as e:
        raise DetectorError(f"not a valid ONNX model: {e}") from e


def set_io_shapes(
    model: bytes,
    shapes: Mapping[str, Sequence[Dim]],
    *,
    drop_initializer_inputs: bool = True,
) -> bytes:
    """A copy of ``model`` with new declared shapes for some graph inputs/outputs.

    Args:
        model: a serialized ONNX ModelProto.
        shapes: value name → new dimensions, one per existing dimension: an int fixes it, a str
            makes it symbolic (onnxruntime then accepts any size there), None keeps it.
        drop_initializer_inputs: remove graph inputs that are initializers (old exporters list
            every weight as an input; onnxruntime then warns once per weight and must treat them
            as overridable, which blocks constant folding).

    Raises:
        DetectorError: the bytes are not a well-formed ModelProto with one graph, a named value is
            not among the graph's inputs/outputs, or its rank differs from the new shape's.
    """
    for name, spec in shapes.items():
        for dim in spec:
            _check_dim(name, dim)
    try:
        _graph_of(model)  # exactly one graph, or a clear error
        return _rewrite_field(
            model,
            _MODEL_GRAPH,
            "ModelProto",
            lambda graph: _rewrite_graph(graph, shapes, drop_initializer_inputs),
        )
    except _WireError as e:
        raise DetectorError(f"cannot edit ONNX model shapes: {e}") from e
