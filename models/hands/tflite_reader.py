"""A minimal reader of TFLite flatbuffers: the one subgraph's tensors, constants and operators.

Only what the MediaPipe hand models need is read, through `flatbuffers`' generic table API and
the field numbers of TFLite's published schema (schema.fbs), so no generated schema package is
needed at run time. Constants stored as fp16 behind DEQUANTIZE ops are dequantized here and the
DEQUANTIZE ops dropped: the converter sees plain fp32 constants. This module knows nothing about
torch or about which network it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from flatbuffers import number_types as nt

# BuiltinOperator codes (schema.fbs) of the operators the hand models use.
OPERATOR_NAMES = {
    0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
    9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 22: "RESHAPE",
    23: "RESIZE_BILINEAR", 34: "PAD", 40: "MEAN", 54: "PRELU",
}
# TensorType -> numpy dtype, for the types a constant of these models can have.
TENSOR_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 9: np.int8, 3: np.uint8}
PADDINGS = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}

# Per operator: its options table's fields as (name, field number, flags, decode), in schema order.
_B, _I = nt.Int8Flags, nt.Int32Flags
_OPTION_FIELDS = {
    "CONV_2D": (("padding", 0, _B, PADDINGS), ("stride_w", 1, _I, None),
                ("stride_h", 2, _I, None), ("activation", 3, _B, ACTIVATIONS),
                ("dilation_w", 4, _I, None), ("dilation_h", 5, _I, None)),
    "DEPTHWISE_CONV_2D": (("padding", 0, _B, PADDINGS), ("stride_w", 1, _I, None),
                          ("stride_h", 2, _I, None), ("depth_multiplier", 3, _I, None),
                          ("activation", 4, _B, ACTIVATIONS), ("dilation_w", 5, _I, None),
                          ("dilation_h", 6, _I, None)),
    "MAX_POOL_2D": (("padding", 0, _B, PADDINGS), ("stride_w", 1, _I, None),
                    ("stride_h", 2, _I, None), ("filter_w", 3, _I, None),
                    ("filter_h", 4, _I, None), ("activation", 5, _B, ACTIVATIONS)),
    "ADD": (("activation", 0, _B, ACTIVATIONS),),
    "CONCATENATION": (("axis", 0, _I, None), ("activation", 1, _B, ACTIVATIONS)),
    "FULLY_CONNECTED": (("activation", 0, _B, ACTIVATIONS), ("weights_format", 1, _B, None),
                        ("keep_num_dims", 2, nt.BoolFlags, None)),
    "RESIZE_BILINEAR": (("align_corners", 2, nt.BoolFlags, None),
                        ("half_pixel_centers", 3, nt.BoolFlags, None)),
    "MEAN": (("keep_dims", 0, nt.BoolFlags, None),),
}
# Defaults the schema gives a field that the file leaves out.
_OPTION_DEFAULTS = {"dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1, "stride_w": 1,
                    "stride_h": 1, "activation": "NONE", "padding": "SAME"}


class TfliteFormatError(ValueError):
    """The file is not a TFLite model of the kind this reader understands."""


@dataclass(frozen=True)
class TfliteTensor:
    name: str
    shape: tuple[int, ...]
    dtype: type


@dataclass(frozen=True)
class TfliteOperator:
    kind: str  # a name from OPERATOR_NAMES
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TfliteGraph:
    """One subgraph with its constants dequantized to fp32 and DEQUANTIZE ops removed."""

    tensors: tuple[TfliteTensor, ...]
    constants: dict[int, np.ndarray]  # tensor index -> value (fp16 ones as fp32)
    operators: tuple[TfliteOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class _Table:
    """A flatbuffer table with accessors by field number (vtable slot 4 + 2 * number)."""

    def __init__(self, buf: bytearray, pos: int) -> None:
        self._table = flatbuffers.table.Table(buf, pos)

    def _offset(self, number: int) -> int:
        return self._table.Offset(4 + 2 * number)

    def scalar(self, number: int, flags, default=0):
        offset = self._offset(number)
        return self._table.Get(flags, offset + self._table.Pos) if offset else default

    def string(self, number: int) -> str:
        offset = self._offset(number)
        return self._table.String(offset + self._table.Pos).decode() if offset else ""

    def array(self, number: int, flags) -> np.ndarray:
        offset = self._offset(number)
        if not offset:
            return np.zeros(0, dtype=np.dtype(flags.name))
        return self._table.GetVectorAsNumpy(flags, offset)

    def table(self, number: int) -> _Table | None:
        offset = self._offset(number)
        if not offset:
            return None
        return _Table(self._table.Bytes, self._table.Indirect(offset + self._table.Pos))

    def tables(self, number: int) -> list[_Table]:
        offset = self._offset(number)
        if not offset:
            return []
        start, count = self._table.Vector(offset), self._table.VectorLen(offset)
        return [_Table(self._table.Bytes, self._table.Indirect(start + 4 * i))
                for i in range(count)]


def _operator_kind(code: _Table) -> str:
    # builtin_code (field 3) superseded the int8 deprecated_builtin_code (field 0) past 127.
    number = max(code.scalar(0, nt.Int8Flags), code.scalar(3, nt.Int32Flags))
    if number not in OPERATOR_NAMES:
        raise TfliteFormatError(f"unsupported TFLite builtin operator {number}")
    return OPERATOR_NAMES[number]


def _options(kind: str, table: _Table | None) -> dict:
    fields = _OPTION_FIELDS.get(kind, ())
    options = {}
    for name, number, flags, decode in fields:
        value = table.scalar(number, flags, None) if table is not None else None
        if value is None:
            value = _OPTION_DEFAULTS.get(name, 0)
        elif decode is not None:
            value = decode[value]
        options[name] = bool(value) if flags is nt.BoolFlags else value
    return options


def read_tflite_graph(data: bytes) -> TfliteGraph:
    """Parse a TFLite file's bytes into a TfliteGraph (one subgraph, fp32 constants)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TfliteFormatError("not a TFLite flatbuffer (no TFL3 identifier)")
    buf = bytearray(data)
    model = _Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    subgraphs = model.tables(2)
    if len(subgraphs) != 1:
        raise TfliteFormatError(f"expected one subgraph, found {len(subgraphs)}")
    graph = subgraphs[0]
    buffers = model.tables(4)
    kinds = [_operator_kind(code) for code in model.tables(1)]

    tensors, constants = [], {}
    for index, tensor in enumerate(graph.tables(0)):
        type_code = tensor.scalar(1, nt.Int8Flags)
        if type_code not in TENSOR_DTYPES:
            raise TfliteFormatError(f"tensor {index} has unsupported type {type_code}")
        dtype = TENSOR_DTYPES[type_code]
        shape = tuple(int(d) for d in tensor.array(0, nt.Int32Flags))
        tensors.append(TfliteTensor(tensor.string(3), shape, dtype))
        raw = buffers[tensor.scalar(2, nt.Uint32Flags)].array(0, nt.Uint8Flags)
        if raw.size:
            constants[index] = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape)

    operators = []
    for op in graph.tables(3):
        kind = kinds[op.scalar(0, nt.Uint32Flags)]
        inputs = tuple(int(i) for i in op.array(1, nt.Int32Flags))
        outputs = tuple(int(i) for i in op.array(2, nt.Int32Flags))
        if kind == "DEQUANTIZE":  # fold: the output tensor becomes an fp32 constant
            if inputs[0] not in constants:
                raise TfliteFormatError("DEQUANTIZE of a non-constant tensor is not supported")
            constants[outputs[0]] = constants[inputs[0]].astype(np.float32)
            continue
        operators.append(TfliteOperator(kind, inputs, outputs, _options(kind, op.table(4))))
    return TfliteGraph(tuple(tensors), constants, tuple(operators),
                       tuple(int(i) for i in graph.array(1, nt.Int32Flags)),
                       tuple(int(i) for i in graph.array(2, nt.Int32Flags)))
