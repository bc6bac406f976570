"""A TFLite graph as a torch module: one plain torch layer per TFLite operator, run in order.

The MediaPipe hand networks are small convolutional graphs (BlazePalm-style residual blocks with
PReLU, an FPN with two upsamplings; a MobileNetV2-like landmark net), so instead of a
hand-written class per network, `plan_from_tflite` turns the operator list into a JSON-able
plan of steps and `state_from_tflite` the constants into a state dict whose keys the plan names.
`OpGraph(plan)` rebuilds the layers from the plan alone, so a warm start needs only the cached
safetensors file (the plan travels in it as the `PLAN_KEY` byte tensor), and loading is strict.

Layout: 4-D tensors are NCHW (channels_last in memory), the natural torch form of TFLite's NHWC;
axes and reshapes are translated where TFLite's NHWC order is visible (RESHAPE, CONCATENATION,
MEAN, PAD). Batch 1 in the TFLite shapes becomes any batch. Nothing here knows what the networks
detect.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.layers import ConvAct, same_padding, symmetric_same_padding
from models.hands.tflite_reader import TfliteFormatError, TfliteGraph, TfliteOperator
from models.weight_cache import load_into

PLAN_KEY = "plan.json"  # a uint8 tensor holding the plan's JSON, stored beside the weights
PLAN_VERSION = 2
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
WEIGHTED_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "PRELU")
CONV_ACTIVATIONS = {"NONE": "none", "RELU": "relu", "RELU6": "relu6"}  # -> ConvAct's names


def _activation(name: str) -> str:
    if name not in ("NONE", "RELU", "RELU6"):
        raise TfliteFormatError(f"unsupported fused activation {name}")
    return name


def _conv_step(op: TfliteOperator, graph: TfliteGraph, layer: str) -> dict:
    """CONV_2D / DEPTHWISE_CONV_2D. TF 'SAME' padding is asymmetric for stride 2 (one more
    row and column after than before); instead of copying the input into a padded buffer, the
    convolution gets a symmetric padding and its output is cropped to line up (`crop`), which
    measured 3-7x cheaper than F.pad on these activations (models.backbones.layers)."""
    o = op.options
    if (o["dilation_w"], o["dilation_h"]) != (1, 1):
        raise TfliteFormatError("dilated convolutions are not supported")
    weight = graph.constants[op.inputs[1]]
    height, width = graph.tensors[op.inputs[0]].shape[1:3]
    kernel_h, kernel_w = int(weight.shape[1]), int(weight.shape[2])
    padding, crop = [0, 0], []
    if o["padding"] == "SAME":
        axes = [(height, kernel_h, o["stride_h"]), (width, kernel_w, o["stride_w"])]
        if all(same_padding(*axis)[0] == same_padding(*axis)[1] for axis in axes):
            padding = [same_padding(*axis)[0] for axis in axes]
        else:
            (pad_h, first_h, count_h), (pad_w, first_w, count_w) = (
                symmetric_same_padding(*axis) for axis in axes)
            padding, crop = [pad_h, pad_w], [first_h, count_h, first_w, count_w]
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    in_channels = graph.tensors[op.inputs[0]].shape[3]
    return {
        "kind": "conv", "layer": layer, "inputs": [op.inputs[0]], "output": op.outputs[0],
        "in_channels": in_channels,
        "out_channels": int(weight.shape[3] if depthwise else weight.shape[0]),
        "kernel": [kernel_h, kernel_w], "stride": [o["stride_h"], o["stride_w"]],
        "groups": in_channels if depthwise else 1, "padding": padding, "crop": crop,
        "activation": _activation(o["activation"]),
    }


def _step(op: TfliteOperator, graph: TfliteGraph, index: int) -> dict:
    layer = f"op{index}"
    first, out = op.inputs[0], op.outputs[0]
    in_shape, out_shape = graph.tensors[first].shape, graph.tensors[out].shape
    kind = op.kind
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _conv_step(op, graph, layer)
    if kind == "PRELU":
        alpha = graph.constants[op.inputs[1]]
        if alpha.size != in_shape[-1]:
            raise TfliteFormatError("PRELU alpha must be one value per channel")
        return {"kind": "prelu", "layer": layer, "inputs": [first], "output": out,
                "channels": int(alpha.size)}
    if kind == "FULLY_CONNECTED":
        weight = graph.constants[op.inputs[1]]
        if len(in_shape) != 2 or op.options["keep_num_dims"]:
            raise TfliteFormatError("FULLY_CONNECTED needs a 2-D input")
        return {"kind": "linear", "layer": layer, "inputs": [first], "output": out,
                "in_features": int(weight.shape[1]), "out_features": int(weight.shape[0]),
                "bias": len(op.inputs) > 2 and op.inputs[2] >= 0,
                "activation": _activation(op.options["activation"])}
    if kind == "ADD":
        if any(i in graph.constants for i in op.inputs):
            raise TfliteFormatError("ADD of a constant is not supported")
        return {"kind": "add", "inputs": list(op.inputs), "output": out,
                "activation": _activation(op.options["activation"])}
    if kind == "MAX_POOL_2D":
        o = op.options
        pads = (0, 0, 0, 0)
        if o["padding"] == "SAME":
            pads = (*same_padding(in_shape[2], o["filter_w"], o["stride_w"]),
                    *same_padding(in_shape[1], o["filter_h"], o["stride_h"]))
        if any(pads):  # TFLite pads max pools with -inf; not needed by these graphs
            raise TfliteFormatError("padded MAX_POOL_2D is not supported")
        return {"kind": "max_pool", "inputs": [first], "output": out,
                "kernel": [o["filter_h"], o["filter_w"]], "stride": [o["stride_h"], o["stride_w"]]}
    if kind == "PAD":
        paddings = graph.constants[op.inputs[1]].astype(int).tolist()  # NHWC (before, after)
        if len(paddings) != 4 or paddings[0] != [0, 0]:
            raise TfliteFormatError("PAD must be 4-D and leave the batch alone")
        (top, bottom), (left, right), (front, back) = paddings[1], paddings[2], paddings[3]
        return {"kind": "pad", "inputs": [first], "output": out,
                "pads": [left, right, top, bottom, front, back]}
    if kind == "RESIZE_BILINEAR":
        if not (op.options["half_pixel_centers"] or op.options["align_corners"]):
            raise TfliteFormatError("legacy RESIZE_BILINEAR (no half-pixel centres) unsupported")
        return {"kind": "resize", "inputs": [first], "output": out,
                "size": [out_shape[1], out_shape[2]],
                "align_corners": bool(op.options["align_corners"])}
    if kind == "RESHAPE":
        return {"kind": "reshape", "inputs": [first], "output": out, "nhwc": len(in_shape) == 4,
                "shape": [-1 if d == -1 else int(d) for d in out_shape[1:]]}
    if kind == "CONCATENATION":
        rank, axis = len(out_shape), op.options["axis"] % len(out_shape)
        return {"kind": "concat", "inputs": list(op.inputs), "output": out,
                "axis": NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis,
                "activation": _activation(op.options["activation"])}
    if kind == "MEAN":
        axes = sorted(int(a) % len(in_shape) for a in graph.constants[op.inputs[1]].ravel())
        if len(in_shape) != 4 or axes != [1, 2]:
            raise TfliteFormatError("MEAN is supported over the spatial axes of a 4-D tensor")
        return {"kind": "mean_hw", "inputs": [first], "output": out,
                "keep_dims": bool(op.options["keep_dims"])}
    if kind == "LOGISTIC":
        return {"kind": "sigmoid", "inputs": [first], "output": out}
    raise TfliteFormatError(f"operator {kind} is not supported")


def plan_from_tflite(graph: TfliteGraph) -> dict:
    """The graph's steps, in execution order, and which tensor ids are inputs and outputs."""
    if len(graph.inputs) != 1:
        raise TfliteFormatError(f"expected one graph input, found {len(graph.inputs)}")
    steps = [_step(op, graph, index) for index, op in enumerate(graph.operators)]
    return {"version": PLAN_VERSION, "input": graph.inputs[0],
            "input_shape": list(graph.tensors[graph.inputs[0]].shape),
            "outputs": list(graph.outputs),
            "output_names": [graph.tensors[i].name for i in graph.outputs], "steps": steps}


def state_from_tflite(graph: TfliteGraph) -> dict[str, torch.Tensor]:
    """fp32 torch tensors for every weighted step, named `layers.<layer>.<param>`, plus the
    plan as PLAN_KEY. Weight layouts: OHWI -> OIHW, depthwise 1HW(C) -> C1HW, PReLU (.., C) -> C.
    """
    plan = plan_from_tflite(graph)
    state: dict[str, torch.Tensor] = {}
    for op, step in zip(graph.operators, plan["steps"]):
        if op.kind not in WEIGHTED_KINDS:
            continue
        prefix = f"layers.{step['layer']}."
        weight = graph.constants[op.inputs[1]].astype(np.float32)
        if op.kind == "CONV_2D":
            weight = weight.transpose(0, 3, 1, 2)
        elif op.kind == "DEPTHWISE_CONV_2D":
            weight = weight.transpose(3, 0, 1, 2)
        elif op.kind == "PRELU":
            weight = weight.reshape(-1)
        state[prefix + "weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        if op.kind != "PRELU" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = graph.constants[op.inputs[2]].astype(np.float32).reshape(-1)
            state[prefix + "bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    state[PLAN_KEY] = torch.frombuffer(bytearray(json.dumps(plan).encode()), dtype=torch.uint8)
    return state


def split_plan(state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """(plan, weights) from a state dict made by state_from_tflite (e.g. read from the cache)."""
    weights = dict(state)
    if PLAN_KEY not in weights:
        raise TfliteFormatError(f"state dict has no {PLAN_KEY}")
    plan = json.loads(bytes(weights.pop(PLAN_KEY).numpy().tobytes()).decode())
    if plan.get("version") != PLAN_VERSION:
        raise TfliteFormatError(f"plan version {plan.get('version')}, expected {PLAN_VERSION}")
    return plan, weights


def _layer(step: dict) -> nn.Module | None:
    kind = step["kind"]
    if kind == "conv":
        return ConvAct(step["in_channels"], step["out_channels"], tuple(step["kernel"]),
                       stride=tuple(step["stride"]), padding=tuple(step["padding"]),
                       groups=step["groups"], activation=CONV_ACTIVATIONS[step["activation"]])
    if kind == "prelu":
        return nn.PReLU(step["channels"])
    if kind == "linear":
        return nn.Linear(step["in_features"], step["out_features"], bias=step["bias"])
    return None


def _activate(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "RELU":
        return F.relu(x)
    if name == "RELU6":
        return F.relu6(x)
    return x


def fuse_residual_adds(steps: list[dict], outputs: list[int]) -> list[dict]:
    """Steps with each `conv -> add` pair merged into one conv step carrying a `residual`.

    A pair is merged when the add is the conv's only reader, the conv has no activation of its
    own and the add's other operand exists before the conv runs; the fused step computes
    `activation(conv(x) + residual)`, which oneDNN does in one pass (ConvAct.forward_residual).
    """
    readers: dict[int, list[int]] = {}
    produced_at = {}
    for position, step in enumerate(steps):
        produced_at[step["output"]] = position
        for tensor in step["inputs"]:
            readers.setdefault(tensor, []).append(position)
    fused, absorbed = [dict(step) for step in steps], set()
    for position, step in enumerate(steps):
        if (step["kind"] != "conv" or step["activation"] != "NONE" or step["crop"]
                or step["output"] in outputs or len(readers.get(step["output"], [])) != 1):
            continue
        reader = readers[step["output"]][0]
        add = steps[reader]
        if add["kind"] != "add" or add["inputs"][0] == add["inputs"][1]:
            continue
        other = next(t for t in add["inputs"] if t != step["output"])
        if produced_at.get(other, -1) >= position:
            continue
        fused[position].update(inputs=[step["inputs"][0], other], output=add["output"],
                               residual_activation=add["activation"])
        absorbed.add(reader)
    return [step for position, step in enumerate(fused) if position not in absorbed]


class OpGraph(nn.Module):
    """Runs a plan: input NCHW float (channels_last welcome), outputs in the graph's order.

    Each intermediate is dropped after its last use, so peak memory is a few activations, not
    the whole graph's. `use_onednn(True)` (CPU) runs convolutions with their activation and
    residual sum fused; eager torch otherwise, with the same results up to rounding.
    """

    def __init__(self, plan: dict) -> None:
        super().__init__()
        self.plan = plan
        self.output_names = tuple(plan["output_names"])
        self.input_size = tuple(plan["input_shape"][1:3])
        self.layers = nn.ModuleDict(
            {step["layer"]: layer for step in plan["steps"]
             if (layer := _layer(step)) is not None})
        self.steps = fuse_residual_adds(plan["steps"], plan["outputs"])
        last_use: dict[int, int] = {}
        for position, step in enumerate(self.steps):
            for tensor in step["inputs"]:
                last_use[tensor] = position
        keep = set(plan["outputs"])
        self._release = [[t for t in set(step["inputs"]) if last_use[t] == position
                          and t not in keep] for position, step in enumerate(self.steps)]

    def use_onednn(self, enabled: bool) -> OpGraph:
        for layer in self.layers.values():
            if isinstance(layer, ConvAct):
                layer.use_onednn = enabled
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = {self.plan["input"]: x}
        for step, release in zip(self.steps, self._release):
            args = [values[t] for t in step["inputs"]]
            values[step["output"]] = self._run(step, args)
            for tensor in release:
                del values[tensor]
        return tuple(values[t] for t in self.plan["outputs"])

    def _run(self, step: dict, args: list[torch.Tensor]) -> torch.Tensor:
        kind, x = step["kind"], args[0]
        if kind == "conv":
            layer = self.layers[step["layer"]]
            if "residual_activation" in step:
                return layer.forward_residual(x, args[1],
                                              CONV_ACTIVATIONS[step["residual_activation"]])
            if not step["crop"]:
                return layer(x)
            first_h, count_h, first_w, count_w = step["crop"]
            out = layer(x)[:, :, first_h:first_h + count_h, first_w:first_w + count_w]
            return out.contiguous(memory_format=torch.channels_last)
        if kind in ("prelu", "linear"):
            return _activate(self.layers[step["layer"]](x), step.get("activation", "NONE"))
        if kind == "add":
            return _activate(x + args[1], step["activation"])
        if kind == "max_pool":
            return F.max_pool2d(x, step["kernel"], step["stride"])
        if kind == "pad":
            return F.pad(x, step["pads"])
        if kind == "resize":
            return F.interpolate(x, size=step["size"], mode="bilinear",
                                 align_corners=step["align_corners"])
        if kind == "reshape":
            if step["nhwc"]:
                x = x.permute(0, 2, 3, 1)
            return x.reshape(x.shape[0], *step["shape"])
        if kind == "concat":
            return _activate(torch.cat(args, dim=step["axis"]), step["activation"])
        if kind == "mean_hw":
            return x.mean(dim=(2, 3), keepdim=step["keep_dims"])
        if kind == "sigmoid":
            return torch.sigmoid(x)
        raise ValueError(f"unknown step kind {kind!r}")


def build_op_graph(state: dict[str, torch.Tensor]) -> OpGraph:
    """An OpGraph in eval mode with `state`'s weights loaded strictly."""
    plan, weights = split_plan(state)
    graph = OpGraph(plan)
    load_into(graph, weights, "op graph")
    return graph.eval()
