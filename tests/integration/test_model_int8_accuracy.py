"""int8 against the fp32 reference: every taxonomy confidence within 1.0 point on a fixed set.

The set: the benign photographs of test_model_benign_video (scaled straight to 224) and the
frames benchmarks/bench_model.py times the model on (uniform noise from seed 0). The int8 graphs
are built once into the session's weight cache (calibration + quantisation, tens of seconds on
2 cores); the second load must reuse them, and any batch size must run.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import skimage.transform

from models.default import load_default_classifier
from tests.integration.test_model_benign_video import PHOTOS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_POINTS = 1.0


def photo_224(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()[..., :3]
    resized = skimage.transform.resize(image, (224, 224), anti_aliasing=True)
    return (resized * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "model-weight-cache"


@pytest.fixture(scope="module")
def classifiers(cache_dir):
    return (load_default_classifier(cache_dir, precision="fp32"),
            load_default_classifier(cache_dir, precision="int8"))


FIXED_SETS = {
    "benign photographs": lambda: np.stack([photo_224(name) for name in PHOTOS]),
    # bench_model.py's frames: the first 16 of its rng(0) pool.
    "benchmark frames": lambda: np.random.default_rng(0).integers(
        0, 256, size=(16, 224, 224, 3), dtype=np.uint8),
}


@pytest.mark.parametrize("name", list(FIXED_SETS))
def test_int8_confidences_stay_within_one_point_of_fp32(classifiers, name):
    fp32, int8 = classifiers
    assert int8.precision == "int8" and int8.taxonomy.labels == fp32.taxonomy.labels
    frames = FIXED_SETS[name]()
    difference = np.abs(int8.classify(frames) - fp32.classify(frames))
    worst = np.unravel_index(difference.argmax(), difference.shape)
    print(f"{name}: worst {difference.max():.2f} points "
          f"({fp32.taxonomy.labels[worst[1]].name}, frame {worst[0]})")
    assert difference.max() <= MAX_POINTS


def test_int8_runs_any_batch_size_and_warm_starts_from_its_cached_graphs(classifiers,
                                                                          cache_dir):
    _, int8 = classifiers
    graphs = sorted((cache_dir / "compiled").glob("*.onnx"))
    assert len(graphs) == len(int8.ensemble.backbones)
    written = [graph.stat().st_mtime_ns for graph in graphs]
    warm = load_default_classifier(cache_dir, precision="int8")
    assert [graph.stat().st_mtime_ns for graph in graphs] == written  # reused, not rebuilt
    frames = FIXED_SETS["benchmark frames"]()
    whole = warm.classify(frames)
    for size in (1, 5):
        np.testing.assert_allclose(warm.classify(frames[:size]), whole[:size], atol=1e-3)
