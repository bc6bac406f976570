"""Reading tfjs models from npm tarballs: the data-only JS literal parser, dequantisation, and
the nsfwjs weights' trip through the safetensors cache. Tiny synthetic inputs, except the cache
test, which converts the installed nsfwjs tarball once."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from models.backbones.nsfwjs_mobilenet_v2 import NsfwjsMobileNetV2
from models.nsfwjs_import import NSFWJS_MOBILENET_V2, depthwise_kernel
from models.tfjs_bundle import (
    JsLiteralError,
    decode_weights,
    dequantise,
    module_exports,
    parse_js_literal,
    read_tfjs_model,
)
from models.weight_cache import load_into, load_state
from models.weight_import import WeightImportError

UMD_HEAD = ('!function(e){if("object"==typeof exports&&"undefined"!=typeof module)'
            'module.exports=e();else{(this).model=e()}}(function(){return function e(a,n,i)'
            '{return 1}({1:[function(e,a,n){a.exports=')
UMD_TAIL = "},{}]},{},[1])(1)});"


def umd(literal: str) -> str:
    """A module shaped like nsfwjs's bundled .min.js files, exporting `literal`."""
    return UMD_HEAD + literal + UMD_TAIL


@pytest.mark.parametrize(("text", "expected"), [
    ('{a:1,"b c":[.5,-0,1e-3,-2.5E+2],d:!0,e:!1,f:null,g:"x\\"y\\u00e9\\n"}',
     {"a": 1, "b c": [0.5, 0, 1e-3, -250.0], "d": True, "e": False, "f": None,
      "g": 'x"y\u00e9\n'}),
    ("[ { k : 'single' } , [ ] , { } ]", [{"k": "single"}, [], {}]),
    ("{1:true,$x_2:false}", {"1": True, "$x_2": False}),
])
def test_literal_parser_reads_minified_data(text, expected):
    value, end = parse_js_literal(text)
    assert value == expected
    assert end == len(text)


@pytest.mark.parametrize("text", [
    "{a:require('fs')}",  # a call
    "{a:b}",  # an identifier, not data
    "{a:1+1}",  # an expression: the literal ends at 1, leaving +1
    '{a:"open',  # unterminated string
    "{a:[1,2}",
    "",
])
def test_literal_parser_rejects_code(text):
    with pytest.raises(JsLiteralError):
        _, end = parse_js_literal(text)
        if end != len(text):
            raise JsLiteralError(f"trailing text {text[end:]!r}")


def test_module_exports_finds_the_one_literal():
    assert module_exports(umd('{modelTopology:{x:[1]},weightsManifest:[]}')) == {
        "modelTopology": {"x": [1]}, "weightsManifest": []}
    assert module_exports(umd('"QUJD"')) == "QUJD"
    with pytest.raises(JsLiteralError):
        module_exports("module.exports=e();")  # a call: no literal
    with pytest.raises(JsLiteralError):
        module_exports(umd('{a:1}') + umd('{b:2}'))


def test_dequantise_is_affine_in_double_rounded_once():
    stored = np.array([0, 1, 255], dtype=np.uint8)
    quantization = {"dtype": "uint8", "min": -1.5, "scale": 0.1}
    expected = np.array([-1.5, -1.4, 24.0], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(dequantise(stored, quantization), expected)
    half = np.array([1.5, -2.0], dtype=np.float16)
    np.testing.assert_array_equal(dequantise(half, {"dtype": "float16"}), [1.5, -2.0])
    with pytest.raises(WeightImportError):
        dequantise(stored, {"dtype": "uint8"})  # no scale/min: nothing known to do


def _manifest() -> list[dict]:
    return [{"paths": ["shard1", "shard2"], "weights": [
        {"name": "k", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.5}},
        {"name": "b", "shape": [2], "dtype": "float32",
         "quantization": {"dtype": "uint16", "min": 0.0, "scale": 0.25}},
        {"name": "raw", "shape": [1], "dtype": "float32"},
    ]}]


def _shards() -> dict[str, bytes]:
    data = (bytes([0, 1, 2, 4]) + np.array([4, 8], dtype="<u2").tobytes()
            + np.array([3.25], dtype="<f4").tobytes())
    return {"shard1": data[:3], "shard2": data[3:]}  # an entry split across two shards


def test_decode_weights_reads_entries_back_to_back_across_shards():
    weights = decode_weights(_manifest(), _shards())
    np.testing.assert_array_equal(weights["k"], [[-1.0, -0.5], [0.0, 1.0]])
    np.testing.assert_array_equal(weights["b"], [1.0, 2.0])
    np.testing.assert_array_equal(weights["raw"], [3.25])
    assert all(array.dtype == np.float32 for array in weights.values())


def test_decode_weights_rejects_short_and_long_data():
    shards = _shards()
    with pytest.raises(WeightImportError, match="ends early"):
        decode_weights(_manifest(), {**shards, "shard2": shards["shard2"][:-1]})
    with pytest.raises(WeightImportError, match="unused"):
        decode_weights(_manifest(), {**shards, "shard2": shards["shard2"] + b"\0"})


def test_read_tfjs_model_from_a_tarball(tmp_path):
    """A synthetic package laid out as nsfwjs's: model.min.js plus base64 shard modules."""
    manifest = ('[{paths:["group1-shard1of2","group1-shard2of2"],weights:['
                '{name:"k",shape:[2,2],dtype:"float32",'
                'quantization:{dtype:"uint8",min:-1,scale:.5}},'
                '{name:"b",shape:[2],dtype:"float32",'
                'quantization:{dtype:"uint16",min:0,scale:.25}},'
                '{name:"raw",shape:[1],dtype:"float32"}]}]')
    shards = _shards()
    files = {
        "model.min.js": umd("{modelTopology:{keras_version:\"2.2.4\"},weightsManifest:"
                            + manifest + "}"),
        "group1-shard1of2.min.js": umd(f'"{base64.b64encode(shards["shard1"]).decode()}"'),
        "group1-shard2of2.min.js": umd(f'"{base64.b64encode(shards["shard2"]).decode()}"'),
    }
    tarball = tmp_path / "pkg-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/dist/models/tiny/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    model = read_tfjs_model(tarball, "dist/models/tiny")
    assert model.format == "layers-model"
    assert model.topology == {"keras_version": "2.2.4"}
    np.testing.assert_array_equal(model.weights["k"], [[-1.0, -0.5], [0.0, 1.0]])
    with pytest.raises(WeightImportError, match="no package/dist/models/other/model.min.js"):
        read_tfjs_model(tarball, "dist/models/other")


def test_depthwise_kernel_orders_channels_as_tensorflow():
    """HWCM -> (C*M)1HW: output channel c * M + m is input channel c's m-th filter."""
    kernel = np.arange(2 * 2 * 3 * 2, dtype=np.float32).reshape(2, 2, 3, 2)
    torch_kernel = depthwise_kernel(kernel)
    assert torch_kernel.shape == (6, 1, 2, 2)
    for channel in range(3):
        for multiple in range(2):
            np.testing.assert_array_equal(torch_kernel[channel * 2 + multiple, 0],
                                          kernel[:, :, channel, multiple])


def test_nsfwjs_weights_round_trip_through_the_cache(tmp_path: Path):
    state, from_cache = load_state(NSFWJS_MOBILENET_V2, tmp_path)
    assert not from_cache
    assert NSFWJS_MOBILENET_V2.cache_path(tmp_path).is_file()
    cached, from_cache = load_state(NSFWJS_MOBILENET_V2, tmp_path)
    assert from_cache
    assert cached.keys() == state.keys()
    for name, tensor in state.items():
        torch.testing.assert_close(cached[name], tensor, rtol=0, atol=0)
    with torch.device("meta"):
        module = NsfwjsMobileNetV2()
    load_into(module, cached, NSFWJS_MOBILENET_V2.name, assign=True)  # strict: every key fits
    assert module.classifier[4].weight.shape == (5, 128)
