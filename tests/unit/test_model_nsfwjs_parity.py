"""nsfwjs's models, ported to torch, reproduce the source runtime: @tensorflow/tfjs 4.22.0 under
node, loading the same files from the same tarball. fp32, softmax outputs, 1e-4 absolute.

tfjs is a test-only dependency, installed on first use with npm into a cache directory beside
the venv (reused afterwards); the tests skip, saying why, only when that install is impossible
(no node or npm, or the registry refused). The modules are checked in the form production runs:
after prepare_for_inference (BatchNorm and pixel scale folded, oneDNN fusion, channels_last).
The inputs are already 224x224 so that no resize enters the comparison.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import skimage.transform
import torch

from models.backbones.inference import prepare_for_inference
from models.backbones.nsfwjs_mobilenet_v2 import (
    CLASS_NAMES,
    INPUT_SIZE,
    NsfwjsMobileNetV2,
    nsfwjs_mobilenet_v2_mid,
)
from models.nsfwjs_import import (
    MOBILENET_V2_DIR,
    MOBILENET_V2_MID_DIR,
    nsfwjs_mobilenet_v2_mid_state_dict,
    nsfwjs_mobilenet_v2_state_dict,
)
from models.tfjs_bundle import TARBALL_ROOT
from models.weight_cache import load_into
from models.weight_sources import NSFWJS

SOFTMAX_TOLERANCE = 1e-4
TFJS_PACKAGE, TFJS_VERSION = "@tensorflow/tfjs", "4.22.0"
NODE_TEST_DIR = Path(sys.prefix) / "share" / "modengine" / "node-test"
REFERENCE_SCRIPT = Path(__file__).resolve().parents[1] / "reference" / "nsfwjs_tfjs.js"
NPM_INSTALL_TIMEOUT_S = 300
NODE_RUN_TIMEOUT_S = 180


def _installed_version(prefix: Path) -> str | None:
    manifest = prefix / "node_modules" / "@tensorflow" / "tfjs" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _npm_install(target: Path) -> None:
    """Install into a fresh sibling directory, then rename it into place, so that a killed
    or concurrent install never leaves a half-filled cache that looks complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp"))
    try:
        result = subprocess.run(
            ["npm", "install", "--prefix", str(staging), "--no-audit", "--no-fund",
             "--no-save", f"{TFJS_PACKAGE}@{TFJS_VERSION}"],
            capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S, check=False)
        if result.returncode != 0 or _installed_version(staging) != TFJS_VERSION:
            pytest.skip(f"cannot install {TFJS_PACKAGE}@{TFJS_VERSION} with npm "
                        f"(exit {result.returncode}): {result.stderr.strip()[-300:]}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def tfjs_node_modules() -> Path:
    """node_modules holding @tensorflow/tfjs 4.22.0, installed once into NODE_TEST_DIR."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("the tfjs reference needs node and npm on PATH")
    if _installed_version(NODE_TEST_DIR) != TFJS_VERSION:
        try:
            _npm_install(NODE_TEST_DIR)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot install {TFJS_PACKAGE}@{TFJS_VERSION}: {exc}")
    return NODE_TEST_DIR / "node_modules"


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Two seeded noise frames and one photograph (saturated and natural statistics)."""
    noise = np.random.default_rng(11).integers(0, 256, size=(2, INPUT_SIZE, INPUT_SIZE, 3),
                                               dtype=np.uint8)
    photo = skimage.transform.resize(skimage.data.astronaut(), (INPUT_SIZE, INPUT_SIZE),
                                     anti_aliasing=True)
    return np.concatenate([noise, (photo * 255).round().astype(np.uint8)[None]])


def _extract_model_dir(model_dir: str, destination: Path) -> Path:
    """Copy one model's .min.js files out of the installed nsfwjs tarball, unchanged."""
    prefix = f"{TARBALL_ROOT}/{model_dir}/"
    with tarfile.open(NSFWJS.locate(), "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.startswith(prefix):
                (destination / Path(member.name).name).write_bytes(
                    archive.extractfile(member).read())
    return destination


def run_tfjs(node_modules: Path, model_dir: str, frames: np.ndarray, work: Path) -> np.ndarray:
    """The tfjs outputs for uint8 frames, fed as nsfwjs feeds them (float RGB / 255)."""
    files = _extract_model_dir(model_dir, work)
    inputs, outputs = work / "input.bin", work / "output.bin"
    (frames.astype(np.float32) / np.float32(255.0)).astype("<f4").tofile(inputs)
    result = subprocess.run(
        ["node", str(REFERENCE_SCRIPT), str(files), str(inputs), str(len(frames)),
         str(frames.shape[1]), str(outputs)],
        capture_output=True, text=True, timeout=NODE_RUN_TIMEOUT_S, check=False,
        env={"NODE_PATH": str(node_modules), "PATH": str(Path(shutil.which("node")).parent)})
    assert result.returncode == 0, result.stderr[-2000:]
    return np.fromfile(outputs, dtype="<f4").reshape(len(frames), len(CLASS_NAMES))


def run_ours(module: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    prepared = prepare_for_inference(module.eval(), torch.device("cpu"), "fp32")
    with torch.inference_mode():
        return prepared(torch.from_numpy(frames)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize(("model_dir", "make", "convert"), [
    (MOBILENET_V2_DIR, NsfwjsMobileNetV2, nsfwjs_mobilenet_v2_state_dict),
    (MOBILENET_V2_MID_DIR, nsfwjs_mobilenet_v2_mid, nsfwjs_mobilenet_v2_mid_state_dict),
], ids=["mobilenet_v2", "mobilenet_v2_mid"])
def test_native_module_matches_tfjs(tfjs_node_modules, frames, tmp_path, model_dir, make,
                                    convert):
    module = load_into(make(), convert(NSFWJS.locate()), model_dir)
    ours = run_ours(module, frames)
    reference = run_tfjs(tfjs_node_modules, model_dir, frames, tmp_path)
    error = float(np.abs(ours - reference).max())
    print(f"{model_dir}: max abs error {error:.2e} vs tfjs {TFJS_VERSION}")
    assert ours.shape == reference.shape == (len(frames), len(CLASS_NAMES))
    np.testing.assert_allclose(ours, reference, atol=SOFTMAX_TOLERANCE, rtol=0)
    assert np.allclose(ours.sum(axis=1), 1.0, atol=1e-5)


def test_folding_and_fusing_keep_the_function(frames):
    """The eager module (BatchNorm and pixel scale unfolded, no oneDNN) and the prepared one
    agree; tfjs is compared with the prepared one only."""
    state = nsfwjs_mobilenet_v2_state_dict(NSFWJS.locate())
    eager = load_into(NsfwjsMobileNetV2(), state, "eager").eval()
    with torch.inference_mode():
        unfolded = eager(torch.from_numpy(frames)).numpy()
    prepared = load_into(NsfwjsMobileNetV2(), state, "prepared")
    np.testing.assert_allclose(run_ours(prepared, frames), unfolded, atol=1e-5, rtol=0)
    assert prepared.stem_takes_pixels and prepared.blocks[1].project.folded


@pytest.mark.bf16
def test_bf16_stays_close_to_fp32(frames):
    state = nsfwjs_mobilenet_v2_state_dict(NSFWJS.locate())
    fp32 = run_ours(load_into(NsfwjsMobileNetV2(), state, "fp32"), frames)
    bf16_module = prepare_for_inference(load_into(NsfwjsMobileNetV2(), state, "bf16").eval(),
                                        torch.device("cpu"), "bf16")
    assert bf16_module.stem.conv.weight.dtype == torch.bfloat16
    assert bf16_module.classifier[0].weight.dtype == torch.float32  # the head stays fp32
    with torch.inference_mode():
        bf16 = bf16_module(torch.from_numpy(frames)).numpy()
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16, fp32, atol=0.03)
