"""The two MediaPipe hand networks as torch op graphs reproduce the TFLite interpreter.

Reference: LiteRT (`ai-edge-litert`, the `test` extra) with the plain built-in kernels (no
XNNPACK delegate), fp32. Inputs: seeded noise and a photograph. Each output's max abs error must
be within 1e-4 of that output's scale (its largest magnitude). Checked in the form production
runs (oneDNN-fused convolutions, channels_last) and eager.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from models.hands.op_graph import OpGraph, build_op_graph, state_from_tflite
from models.hands.tflite_reader import read_tflite_graph
from models.hands.weights import read_landmark_tflite, read_palm_tflite
from models.weight_sources import MEDIAPIPE_HANDS

litert = pytest.importorskip("ai_edge_litert.interpreter",
                             reason="the TFLite reference runtime (ai-edge-litert) is not installed")

RELATIVE_TOLERANCE = 1e-4


def reference_outputs(model: bytes, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Each NHWC image through the interpreter one at a time (the graph's batch is 1)."""
    interpreter = litert.Interpreter(
        model_content=model,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    (model_input,), outputs = interpreter.get_input_details(), interpreter.get_output_details()
    results: dict[str, list[np.ndarray]] = {d["name"]: [] for d in outputs}
    for image in batch:
        interpreter.set_tensor(model_input["index"], image[None])
        interpreter.invoke()
        for detail in outputs:
            results[detail["name"]].append(interpreter.get_tensor(detail["index"])[0])
    return {name: np.stack(values) for name, values in results.items()}


def ours(graph: OpGraph, batch: np.ndarray) -> dict[str, np.ndarray]:
    pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        outputs = graph(pixels)
    return {name: out.numpy() for name, out in zip(graph.output_names, outputs)}


def inputs(size: int) -> np.ndarray:
    """Two noise images and the astronaut photograph, NHWC float32 in 0..1."""
    noise = np.random.default_rng(11).random((2, size, size, 3), dtype=np.float32)
    photo = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1)[None].float() / 255
    photo = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear",
                                            antialias=True, align_corners=False)
    return np.concatenate([noise, photo.permute(0, 2, 3, 1).numpy()]).astype(np.float32)


@pytest.fixture(scope="module")
def tflite_models() -> dict[str, bytes]:
    tarball = MEDIAPIPE_HANDS.locate()
    return {"palm": read_palm_tflite(tarball), "landmark": read_landmark_tflite(tarball)}


@pytest.mark.parametrize("fused", [True, False], ids=["onednn", "eager"])
@pytest.mark.parametrize("network, size", [("palm", 192), ("landmark", 224)])
def test_network_matches_tflite_interpreter(tflite_models, network, size, fused):
    model = tflite_models[network]
    graph = build_op_graph(state_from_tflite(read_tflite_graph(model)))
    graph.to(memory_format=torch.channels_last).use_onednn(fused)
    batch = inputs(size)
    expected, got = reference_outputs(model, batch), ours(graph, batch)
    assert set(expected) == set(got)
    for name, reference in expected.items():
        scale = max(float(np.abs(reference).max()), 1e-6)
        error = float(np.abs(got[name] - reference).max())
        print(f"{network} {name} {reference.shape}: max abs error {error:.3g}, scale {scale:.3g}")
        assert got[name].shape == reference.shape
        assert error <= RELATIVE_TOLERANCE * scale, (name, error, scale)
