"""Reading the hand networks out of the npm tarball: packed assets, the TFLite reader's refusals,
and the op-graph plan travelling inside the state dict."""

from __future__ import annotations

import json

import pytest
import torch

from models.hands.op_graph import PLAN_KEY, OpGraph, split_plan, state_from_tflite
from models.hands.tflite_reader import TfliteFormatError, read_tflite_graph
from models.hands.weights import packed_file, read_palm_tflite
from models.weight_import import WeightImportError
from models.weight_sources import MEDIAPIPE_HANDS

LOADER = ('var x = 1; loadPackage({"files": [{"filename": "/a.txt", "start": 0, "end": 3}, '
          '{"filename": "/b.bin", "start": 3, "end": 7}], "remote_package_size": 7});')


def test_packed_file_follows_the_loaders_byte_ranges():
    assert packed_file(LOADER, b"abcdefg", "/b.bin") == b"defg"
    with pytest.raises(WeightImportError, match="no /c.bin"):
        packed_file(LOADER, b"abcdefg", "/c.bin")
    with pytest.raises(WeightImportError, match="outside"):
        packed_file(LOADER, b"abc", "/b.bin")
    with pytest.raises(WeightImportError, match="no file list"):
        packed_file("var x = 1;", b"", "/a.txt")


def test_reader_refuses_what_is_not_tflite():
    with pytest.raises(TfliteFormatError, match="TFL3"):
        read_tflite_graph(b"\x00" * 64)


def test_the_plan_rebuilds_the_graph_from_the_state_dict_alone():
    model = read_palm_tflite(MEDIAPIPE_HANDS.locate())
    graph = read_tflite_graph(model)
    assert model[4:8] == b"TFL3" and len(graph.operators) == 139  # DEQUANTIZE folded away
    assert {op.kind for op in graph.operators} >= {"CONV_2D", "PRELU", "RESIZE_BILINEAR"}
    state = state_from_tflite(graph)
    plan, weights = split_plan(state)
    assert PLAN_KEY not in weights and all(t.dtype == torch.float32 for t in weights.values())
    assert plan["output_names"] == ["Identity", "Identity_1"]
    module = OpGraph(plan)
    assert set(module.state_dict()) == set(weights)
    stale = dict(state)
    stale[PLAN_KEY] = torch.frombuffer(bytearray(json.dumps({"version": 0}).encode()),
                                       dtype=torch.uint8)
    with pytest.raises(TfliteFormatError, match="plan version"):
        split_plan(stale)
