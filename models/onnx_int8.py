"""The "int8" precision: backbones as onnxruntime graphs, statically quantised, cached on disk.

Why onnxruntime: on a CPU without native bf16 (no AMX) bf16 is slower than fp32, and torch 2.14
no longer ships the PT2E quantisation flow (torch.ao's X86InductorQuantizer moved to torchao,
which is not a dependency), while onnxruntime's int8 kernels use AVX512-VNNI / AVX-VNNI
directly: a ResNet-50-thin measured 3.5 ms/frame in int8 against 12.6 in torch fp32 here, and
there is no C++ compiler to find or run, so a worker without one still gets the fast path.

Each backbone source declares a recipe:
- QUANTISE: convolutions int8 (weights per channel, activations per tensor, MinMax ranges
  from models/calibration.py's generated frames); the heads' matrix products and the softmax
  stay fp32 (tests/integration/test_model_int8_accuracy.py holds every taxonomy confidence
  within 1.0 point of fp32);
- ONNX_FP32: the fp32 graph on onnxruntime (still faster than torch's eager fp32 here), for
  a network int8 moves too far: SwiftFormer-S in int8 ran 2x its fp32 graph but moved its NSFW
  output by up to 0.07 on the benchmark's noise frames (3.7 points of Explicit), whichever
  convolutions were left in fp32 (the stem, the first or the last 20 of its 76).
The cold start exports the fp32 module, quantises it and writes the graph next to the
safetensors, under a name keyed by everything that shapes it (weights' stamp, recipe, library
versions, CPU flags, calibration frames), by rename, so workers that start together on a cold
cache never read half a file; warm starts open that file (an onnxruntime session), and any
batch size runs (the batch axis is dynamic). It knows nothing of the taxonomy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.backbones.inference import prepare_for_inference
from models.calibration import CALIBRATION_VERSION, calibration_frames
from models.runtime import CpuFeatures
from models.weight_cache import CachedWeights, read_stamp

log = logging.getLogger(__name__)

QUANTISE, ONNX_FP32 = "quantise", "onnx_fp32"
RECIPE_VERSION = "2"  # bump when export or quantisation settings change
OPSET = 20  # the first with a Gelu op: onnxruntime runs it as one kernel, not five
INPUT_NAME, OUTPUT_NAME = "frames", "probabilities"
CALIBRATION_BATCH = 8
# With the activations listed, the quantiser takes a convolution's range after its ReLU/ReLU6
# (and drops the clip into the int8 range); with convolutions alone it took the pre-clip range,
# 10x wider, and nsfwjs's probabilities moved by up to 0.48 on the benign photographs (0.17
# with the activations listed).
QUANTISED_OPS = ["Conv", "Clip", "Relu"]


def int8_unavailable_reason() -> str | None:
    """Why the int8 path cannot run in this environment (None when it can)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        return f"onnxruntime cannot be imported ({error}); pip install onnxruntime"
    return None


class OnnxBackbone(nn.Module):
    """A backbone's `forward_pixels` served by an onnxruntime session on uint8 NHWC frames.

    The ensemble hands every backbone the same channels_last pixel view; permuting it back is
    the original frame memory, so the session reads the frames without a copy.
    """

    def __init__(self, session, name: str) -> None:
        super().__init__()
        self.session = session
        self.name = name

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        frames = pixels.permute(0, 2, 3, 1).contiguous().numpy()
        (probabilities,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: frames})
        return torch.from_numpy(probabilities)


class _FramesModule(nn.Module):
    """uint8 (N, H, W, 3) frames -> the backbone's probabilities: the exported signature."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_pixels(frames.permute(0, 3, 1, 2))


def graph_path(weights: CachedWeights, cache_dir: Path, recipe: str,
               cpu: CpuFeatures | None = None) -> Path:
    """Where the graph for these weights and recipe lives in the cache, keyed by all it
    depends on: a new package, converter, library version or CPU gets its own file."""
    import onnxruntime

    cpu = cpu or CpuFeatures.read()
    key = json.dumps({
        "weights": read_stamp(weights.cache_path(cache_dir)), "recipe": recipe,
        "recipe_version": RECIPE_VERSION, "calibration": CALIBRATION_VERSION,
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "cpu_flags": cpu.relevant_flags(),
    }, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / "compiled" / f"{weights.name}.{recipe}.{digest}.onnx"


def load_onnx_backbone(module: nn.Module, weights: CachedWeights, cache_dir: Path,
                       recipe: str, threads: int | None) -> tuple[OnnxBackbone, bool]:
    """The backbone as an OnnxBackbone and whether its graph came from the cache.

    module: the fp32 module with its weights loaded, unprepared (exported on a cold start
    only; `weights` must already be in the cache, since the graph's key is their stamp).
    """
    path = graph_path(weights, cache_dir, recipe)
    if path.exists():
        try:
            return OnnxBackbone(open_session(path, threads), weights.name), True
        except (OSError, *_onnxruntime_load_errors()) as error:
            log.warning("cached graph %s unreadable (%s); rebuilding", path, error)
    log.info("building the %s graph of %s into %s (once per machine and cache)",
             recipe, weights.name, path)
    _write_graph(module, recipe, path)
    return OnnxBackbone(open_session(path, threads), weights.name), False


def _onnxruntime_load_errors() -> tuple[type[Exception], ...]:
    """What onnxruntime raises for a file it cannot read (plain Exception subclasses)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return state.InvalidProtobuf, state.Fail, state.InvalidGraph


def open_session(path: Path, threads: int | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # onnxruntime's own warnings go to stderr, not our log
    # Its workers otherwise spin after each run, taking the cores from the torch sources and
    # the decoder that run next in this process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options,
                                        providers=["CPUExecutionProvider"])


def _write_graph(module: nn.Module, recipe: str, path: Path) -> None:
    """Export (and for QUANTISE, calibrate and quantise) into `path`, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        exported = Path(work) / "fp32.onnx"
        _export(prepare_for_inference(module, torch.device("cpu"), "fp32", fuse=False), exported)
        result = exported if recipe == ONNX_FP32 else _quantise(exported, Path(work))
        os.replace(result, path)


def _export(module: nn.Module, path: Path) -> None:
    example = torch.from_numpy(calibration_frames(2))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        torch.onnx.export(_FramesModule(module).eval(), (example,), str(path), dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=OPSET)


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol over the generated frames."""

    def __init__(self) -> None:
        frames = calibration_frames()
        self._batches = iter([{INPUT_NAME: frames[start:start + CALIBRATION_BATCH]}
                              for start in range(0, len(frames), CALIBRATION_BATCH)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self.__init__()


def _quantise(exported: Path, work: Path) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantised = work / "prepared.onnx", work / "int8.onnx"
    quant_pre_process(str(exported), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(quantised), _CalibrationReader(),
                    quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANTISED_OPS,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return quantised
