"""nsfwjs's tfjs models -> state dicts of models/backbones/nsfwjs_mobilenet_v2.py, and the
CachedWeights the default classifier loads them through.

The tarball's files are read by models/tfjs_bundle.py (no JavaScript is run); here the
dequantised tensors are renamed and moved from TensorFlow's layouts to torch's: Conv2D HWIO ->
OIHW, DepthwiseConv2D HWCM -> (C*M)1HW, Dense (in, out) -> (out, in). BatchNorm statistics are
kept as they are (the module folds them at load), so the cache holds the source's values. Like
every converter here it is strict both ways: a source tensor left unplaced is an error, and the
strict module load catches anything missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from models.backbones.nsfwjs_mobilenet_v2 import KERAS_BN_EPS, STAGES
from models.tfjs_bundle import TfjsModel, read_tfjs_model
from models.weight_cache import CachedWeights
from models.weight_import import StateDict, WeightImportError
from models.weight_sources import NSFWJS

MOBILENET_V2_DIR = "dist/models/mobilenet_v2"
MOBILENET_V2_MID_DIR = "dist/models/mobilenet_v2_mid"
_KERAS_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}
_HUB_PREFIX = ("StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/"
               "StatefulPartitionedCall/StatefulPartitionedCall/predict/MobilenetV2/")


def conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """TensorFlow Conv2D kernel (H, W, in, out) -> torch (out, in, H, W)."""
    return kernel.transpose(3, 2, 0, 1)


def depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """TensorFlow depthwise kernel (H, W, C, M) -> torch grouped (C * M, 1, H, W); output
    channel c * M + m, as TensorFlow orders them."""
    height, width, channels, multiplier = kernel.shape
    return kernel.reshape(height, width, channels * multiplier).transpose(2, 0, 1)[:, None]


def _tensors(arrays: dict[str, np.ndarray]) -> StateDict:
    return {name: torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            for name, array in arrays.items()}


def _block_names() -> list[str]:
    """Our block index -> the Keras layer prefix of that inverted residual."""
    count = sum(repeats for _, _, repeats, _ in STAGES)
    return ["expanded_conv"] + [f"block_{index}" for index in range(1, count)]


def _keras_units() -> list[tuple[str, str, str]]:
    """(our ConvNormAct, Keras conv layer, Keras BatchNorm layer) for every convolution."""
    units = [("stem", "Conv1", "bn_Conv1")]
    for index, keras in enumerate(_block_names()):
        parts = ("depthwise", "project") if index == 0 else ("expand", "depthwise", "project")
        units += [(f"blocks.{index}.{part}", f"{keras}_{part}", f"{keras}_{part}_BN")
                  for part in parts]
    units.append(("head", "Conv_1", "Conv_1_bn"))
    return units


def _check_keras_config(model: TfjsModel) -> None:
    """The few hyper-parameters that shapes alone would not catch: strides and BN epsilon."""
    layers = {layer["name"]: layer for layer in model.topology["model_config"]["config"]["layers"]}
    strides = [stride for _, _, repeats, first in STAGES
               for stride in [first] + [1] * (repeats - 1)]
    for index, keras in enumerate(_block_names()):
        if f"{keras}_depthwise" not in layers:
            raise WeightImportError(f"nsfwjs mobilenet_v2 has no layer {keras}_depthwise")
        found = layers[f"{keras}_depthwise"]["config"]["strides"]
        if found != [strides[index]] * 2:
            raise WeightImportError(f"{keras}_depthwise has strides {found}, "
                                    f"expected {strides[index]}")
    for layer in layers.values():
        epsilon = layer["config"].get("epsilon", KERAS_BN_EPS)
        if layer["class_name"] == "BatchNormalization" and abs(epsilon - KERAS_BN_EPS) > 1e-12:
            raise WeightImportError(f"{layer['name']}: BatchNorm epsilon {epsilon}, "
                                    f"expected {KERAS_BN_EPS}")


class _SourceTensors:
    """A model's tensors, handed out by name; `finish` fails if any was never taken, so a
    converter cannot silently drop part of the source."""

    def __init__(self, model: TfjsModel, label: str) -> None:
        self.source, self.label, self.used = model.weights, label, set()

    def __contains__(self, name: str) -> bool:
        return name in self.source

    def take(self, name: str) -> np.ndarray:
        if name not in self.source:
            raise WeightImportError(f"{self.label} has no weight {name!r}")
        self.used.add(name)
        return self.source[name]

    def finish(self, arrays: dict[str, np.ndarray]) -> StateDict:
        left = sorted(set(self.source) - self.used)
        if left:
            raise WeightImportError(f"{self.label}: tensors not imported: {left[:5]}")
        return _tensors(arrays)


def mobilenet_v2_state_dict_from(model: TfjsModel) -> StateDict:
    """State dict of NsfwjsMobileNetV2() from the parsed nsfwjs `mobilenet_v2` model."""
    if model.format != "layers-model":
        raise WeightImportError(f"expected a tfjs layers model, got {model.format!r}")
    _check_keras_config(model)
    tensors = _SourceTensors(model, "nsfwjs mobilenet_v2")
    take = tensors.take
    arrays: dict[str, np.ndarray] = {}
    for ours, conv, norm in _keras_units():
        if conv.endswith("_depthwise"):
            arrays[f"{ours}.conv.weight"] = depthwise_kernel(take(f"{conv}/depthwise_kernel"))
        else:
            arrays[f"{ours}.conv.weight"] = conv_kernel(take(f"{conv}/kernel"))
        for keras, torch_name in _KERAS_BN.items():
            arrays[f"{ours}.norm.{torch_name}"] = take(f"{norm}/{keras}")
    for index, dense in enumerate(("dense_1", "dense_2", "dense_3")):
        arrays[f"classifier.{2 * index}.weight"] = take(f"{dense}/kernel").T
        arrays[f"classifier.{2 * index}.bias"] = take(f"{dense}/bias")
    arrays["pixel_scale"] = np.array(1.0 / 255.0)
    arrays["pixel_shift"] = np.array(0.0)
    return tensors.finish(arrays)


def _hub_unit(scope: str) -> str:
    """TF-Hub scope ('Conv', 'expanded_conv_3/expand', 'Conv_1') -> our ConvNormAct."""
    if scope == "Conv":
        return "stem"
    if scope == "Conv_1":
        return "head"
    match = re.fullmatch(r"expanded_conv(?:_(\d+))?/(expand|depthwise|project)", scope)
    if not match:
        raise WeightImportError(f"unexpected MobilenetV2 scope {scope!r}")
    return f"blocks.{int(match.group(1) or 0)}.{match.group(2)}"


def mobilenet_v2_mid_state_dict_from(model: TfjsModel) -> StateDict:
    """State dict of nsfwjs_mobilenet_v2_mid() from the parsed `mobilenet_v2_mid` graph.

    The graph is walked rather than its weight names trusted: the fused convolutions name
    their kernel and folded-BN offset, the Mul and Sub before the stem give the pixel
    normalisation, and the one fused MatMul the classifier (its weights are unnamed Func
    inputs in the file).
    """
    if model.format != "graph-model":
        raise WeightImportError(f"expected a tfjs graph model, got {model.format!r}")
    tensors = _SourceTensors(model, "nsfwjs mobilenet_v2_mid")
    take = tensors.take
    arrays: dict[str, np.ndarray] = {}
    nodes = model.topology["node"]
    for node in nodes:
        op, inputs = node["op"], node.get("input", [])
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            kernel_name, offset_name = inputs[1], inputs[2]
            if not kernel_name.startswith(_HUB_PREFIX):
                raise WeightImportError(f"unexpected convolution weight {kernel_name!r}")
            ours = _hub_unit(kernel_name[len(_HUB_PREFIX):].rsplit("/", 1)[0])
            kernel = take(kernel_name)
            arrays[f"{ours}.conv.weight"] = (depthwise_kernel(kernel) if op.startswith("Fused")
                                             else conv_kernel(kernel))
            arrays[f"{ours}.conv.bias"] = take(offset_name)
        elif op == "_FusedMatMul":
            arrays["classifier.0.weight"] = take(inputs[1]).T
            arrays["classifier.0.bias"] = take(inputs[2])
    by_op = {node["op"]: node for node in nodes if node["op"] in ("Mul", "Sub")}
    if set(by_op) != {"Mul", "Sub"}:
        raise WeightImportError("nsfwjs mobilenet_v2_mid: no Mul and Sub before the stem")
    scale = take(next(name for name in by_op["Mul"]["input"] if name in tensors))
    shift = take(next(name for name in by_op["Sub"]["input"] if name in tensors))
    arrays["pixel_scale"] = np.array(float(scale) / 255.0)  # the graph is fed RGB / 255
    arrays["pixel_shift"] = np.array(-float(shift))
    return tensors.finish(arrays)


def nsfwjs_mobilenet_v2_state_dict(tarball: Path) -> StateDict:
    """CachedWeights converter: the nsfwjs tarball -> NsfwjsMobileNetV2() state dict."""
    return mobilenet_v2_state_dict_from(read_tfjs_model(tarball, MOBILENET_V2_DIR))


def nsfwjs_mobilenet_v2_mid_state_dict(tarball: Path) -> StateDict:
    """CachedWeights converter: the nsfwjs tarball -> nsfwjs_mobilenet_v2_mid() state dict."""
    return mobilenet_v2_mid_state_dict_from(read_tfjs_model(tarball, MOBILENET_V2_MID_DIR))


NSFWJS_MOBILENET_V2 = CachedWeights("nsfwjs_mobilenet_v2", NSFWJS,
                                    nsfwjs_mobilenet_v2_state_dict, "1")
NSFWJS_MOBILENET_V2_MID = CachedWeights("nsfwjs_mobilenet_v2_mid", NSFWJS,
                                        nsfwjs_mobilenet_v2_mid_state_dict, "1")
