"""The int8 precision's plumbing: where its graphs are cached, and its fp32 fallback.

Its accuracy against fp32 (the real graphs, built once per test session) is checked in
tests/integration/test_model_int8_accuracy.py.
"""

from __future__ import annotations

import logging
import sys

import numpy as np

from models.calibration import calibration_frames
from models.default import load_default_classifier, runnable_precision
from models.onnx_int8 import ONNX_FP32, QUANTISE, graph_path, int8_unavailable_reason
from models.runtime import CpuFeatures
from models.sources import SOURCES


def test_without_onnxruntime_int8_falls_back_to_fp32_and_logs_why(monkeypatch, caplog,
                                                                   tmp_path_factory):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    reason = int8_unavailable_reason()
    assert reason is not None and "onnxruntime" in reason
    with caplog.at_level(logging.WARNING, logger="models.default"):
        assert runnable_precision("int8") == "fp32"
        classifier = load_default_classifier(
            tmp_path_factory.getbasetemp() / "model-weight-cache", precision="int8",
            sources=("nsfwjs",))
    assert classifier.precision == "fp32"
    assert any("int8 cannot run here" in record.getMessage() and "onnxruntime" in
               record.getMessage() for record in caplog.records)
    assert runnable_precision("bf16") == "bf16" and runnable_precision("fp32") == "fp32"


def test_int8_is_available_where_onnxruntime_is_installed():
    assert int8_unavailable_reason() is None


def test_graph_cache_key_follows_cpu_flags_and_recipe(tmp_path):
    weights = SOURCES["nsfwjs"].weights[0]
    vnni = CpuFeatures("a CPU", frozenset({"avx2", "avx512f", "avx512_vnni"}))
    avx2 = CpuFeatures("a CPU", frozenset({"avx2"}))
    path = graph_path(weights, tmp_path, QUANTISE, vnni)
    assert path.parent == tmp_path / "compiled" and path.name.startswith(weights.name)
    assert path == graph_path(weights, tmp_path, QUANTISE, vnni)  # a pure function
    assert path != graph_path(weights, tmp_path, QUANTISE, avx2)
    assert path != graph_path(weights, tmp_path, ONNX_FP32, vnni)
    # Flags that do not change the kernels do not split the cache.
    assert path == graph_path(weights, tmp_path, QUANTISE,
                              CpuFeatures("another", vnni.flags | {"sse4_2", "fpu"}))


def test_every_backbone_declares_an_int8_recipe():
    for source in SOURCES.values():
        assert source.int8_recipe in ((QUANTISE, ONNX_FP32) if source.kind == "backbone"
                                      else ("",))


def test_calibration_frames_are_fixed_and_varied():
    frames = calibration_frames()
    assert frames.shape == (32, 224, 224, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, calibration_frames())
    assert frames.reshape(32, -1).std(axis=1).min() > 5  # no blank frame


def test_an_unreadable_cached_graph_is_rebuilt(tmp_path_factory, caplog):
    cache_dir = tmp_path_factory.getbasetemp() / "model-weight-cache"
    frames = calibration_frames(4)
    first = load_default_classifier(cache_dir, precision="int8", sources=("nsfwjs",))
    expected = first.classify(frames)
    (graph,) = (cache_dir / "compiled").glob("nsfwjs_*.onnx")
    graph.write_bytes(b"a truncated write")
    with caplog.at_level(logging.WARNING, logger="models.onnx_int8"):
        rebuilt = load_default_classifier(cache_dir, precision="int8", sources=("nsfwjs",))
    assert any("unreadable" in record.getMessage() for record in caplog.records)
    assert graph.stat().st_size > 1_000_000
    np.testing.assert_allclose(rebuilt.classify(frames), expected, atol=1e-4)
