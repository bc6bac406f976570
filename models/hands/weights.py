"""Where the two hand networks come from: TFLite files inside the @mediapipe/hands npm tarball.

`hand_landmark_full.tflite` is a plain member of the tarball. The palm detector is not: the
web build packs it, with the palm lite model and handedness.txt, into
`hands_solution_packed_assets.data`, and `hands_solution_packed_assets_loader.js` holds a JSON
list of each packed file's byte range; we read that list rather than hard-coding offsets, so a
repacked asset file is read right or refused. Each network becomes an op-graph state dict
(models.hands.op_graph), cached as safetensors by models.weight_cache.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

from models.hands.op_graph import state_from_tflite
from models.hands.tflite_reader import read_tflite_graph
from models.weight_cache import CachedWeights
from models.weight_import import StateDict, WeightImportError
from models.weight_sources import MEDIAPIPE_HANDS

LANDMARK_MEMBER = "package/hand_landmark_full.tflite"
PACKED_ASSETS_MEMBER = "package/hands_solution_packed_assets.data"
PACKED_LOADER_MEMBER = "package/hands_solution_packed_assets_loader.js"
PALM_PACKED_NAME = "/third_party/mediapipe/modules/palm_detection/palm_detection_full.tflite"
CONVERTER_VERSION = "2"
# The loader's `loadPackage({...})` argument: the packed files' names and byte ranges.
_FILES_LIST = re.compile(r'\{"files":\s*\[.*?\]\s*,\s*"remote_package_size":\s*\d+\s*\}',
                         re.DOTALL)


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = archive.extractfile(name)
    except KeyError as exc:
        raise WeightImportError(f"the @mediapipe/hands tarball has no {name}") from exc
    if handle is None:
        raise WeightImportError(f"{name} in the @mediapipe/hands tarball is not a file")
    return handle.read()


def packed_file(loader_js: str, packed: bytes, name: str) -> bytes:
    """One file out of an Emscripten packed-assets blob, by the loader's byte ranges."""
    match = _FILES_LIST.search(loader_js)
    if match is None:
        raise WeightImportError("no file list in the packed-assets loader")
    entries = {entry["filename"]: entry for entry in json.loads(match.group(0))["files"]}
    if name not in entries:
        raise WeightImportError(f"packed assets have no {name}; they have {sorted(entries)}")
    start, end = entries[name]["start"], entries[name]["end"]
    if not 0 <= start < end <= len(packed):
        raise WeightImportError(f"packed range {start}..{end} of {name} is outside the blob")
    return packed[start:end]


def read_palm_tflite(tarball: Path) -> bytes:
    with tarfile.open(tarball) as archive:
        loader = _member(archive, PACKED_LOADER_MEMBER).decode("utf-8")
        return packed_file(loader, _member(archive, PACKED_ASSETS_MEMBER), PALM_PACKED_NAME)


def read_landmark_tflite(tarball: Path) -> bytes:
    with tarfile.open(tarball) as archive:
        return _member(archive, LANDMARK_MEMBER)


def convert_palm(tarball: Path) -> StateDict:
    return state_from_tflite(read_tflite_graph(read_palm_tflite(tarball)))


def convert_landmark(tarball: Path) -> StateDict:
    return state_from_tflite(read_tflite_graph(read_landmark_tflite(tarball)))


PALM_DETECTOR_WEIGHTS = CachedWeights("mediapipe_palm_detection_full", MEDIAPIPE_HANDS,
                                      convert_palm, CONVERTER_VERSION)
HAND_LANDMARK_WEIGHTS = CachedWeights("mediapipe_hand_landmark_full", MEDIAPIPE_HANDS,
                                      convert_landmark, CONVERTER_VERSION)
