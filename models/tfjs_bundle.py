"""Reading a TensorFlow.js model out of an npm tarball, without running any JavaScript.

nsfwjs ships each model as JavaScript modules instead of model.json + .bin files: `model.min.js`
exports `{modelTopology, weightsManifest}` as an object literal (unquoted keys, `!0` for true,
`.5` for 0.5) and each `group1-shardNofM.min.js` exports one base64 string. Evaluating them
would mean running node (or a JS engine) on package code at load time; instead this module
parses that one literal with a small grammar that accepts data only (objects, arrays, strings,
numbers, booleans, null) and rejects anything else, so a changed file fails loudly rather than
doing something. The weight bytes are then dequantised as tfjs does. It knows nothing of torch
or of any particular network.
"""

from __future__ import annotations

import base64
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.weight_import import WeightImportError

TARBALL_ROOT = "package"

_WHITESPACE = re.compile(r"\s*")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
# `x.exports=` followed by a literal: the UMD wrapper's `module.exports=e()` is a call, not data.
_EXPORTS = re.compile(r"\.exports\s*=\s*(?=[{\"'\[])")
_KEYWORDS = {"true": True, "false": False, "null": None, "!0": True, "!1": False}
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0"}
# Bytes per stored element for each dtype a tfjs weights manifest can use.
_STORED_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16,
                  "float32": np.float32, "int32": np.int32}


class JsLiteralError(WeightImportError):
    """The text is not a data-only JavaScript literal of the shape we accept."""


class _LiteralParser:
    """Recursive descent over one JS value; `position` is where the next token starts."""

    def __init__(self, text: str, position: int) -> None:
        self.text = text
        self.position = position

    def fail(self, what: str) -> JsLiteralError:
        excerpt = self.text[self.position:self.position + 40]
        return JsLiteralError(f"{what} at offset {self.position}: {excerpt!r}")

    def skip_space(self) -> None:
        self.position = _WHITESPACE.match(self.text, self.position).end()

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.position:self.position + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.position += 1

    def value(self) -> Any:
        char = self.peek()
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char and char in "\"'":
            return self.string()
        for word, meaning in _KEYWORDS.items():
            if self.text.startswith(word, self.position):
                end = self.position + len(word)
                if not _IDENTIFIER.match(self.text, end) or word.startswith("!"):
                    self.position = end
                    return meaning
        number = _NUMBER.match(self.text, self.position)
        if number:
            self.position = number.end()
            token = number.group()
            return int(token) if _INTEGER.fullmatch(token) else float(token)
        raise self.fail("not a data literal")

    def object(self) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def entry() -> None:
            key = self.key()
            self.expect(":")
            result[key] = self.value()

        self.delimited("{", "}", entry)
        return result

    def key(self) -> str:
        if self.peek() and self.peek() in "\"'":
            return self.string()
        match = _IDENTIFIER.match(self.text, self.position) or _INTEGER.match(self.text,
                                                                              self.position)
        if not match:
            raise self.fail("expected an object key")
        self.position = match.end()
        return match.group()

    def array(self) -> list[Any]:
        result: list[Any] = []
        self.delimited("[", "]", lambda: result.append(self.value()))
        return result

    def delimited(self, opener: str, closer: str, item) -> None:
        """`opener item, item, ... closer`, a trailing comma allowed (as in JS literals)."""
        self.expect(opener)
        while self.peek() != closer:
            item()
            if self.peek() != ",":
                break
            self.position += 1
        self.expect(closer)

    def string(self) -> str:
        quote = self.text[self.position]
        start = self.position + 1
        end = self.text.find(quote, start)
        if end < 0:
            raise self.fail("unterminated string")
        if self.text.find("\\", start, end) < 0:  # the common case: megabytes of base64
            self.position = end + 1
            return self.text[start:end]
        return self.escaped_string(quote)

    def escaped_string(self, quote: str) -> str:
        pieces: list[str] = []
        index = self.position + 1
        text = self.text
        while index < len(text):
            char = text[index]
            if char == quote:
                self.position = index + 1
                return "".join(pieces)
            if char == "\n":
                break
            if char != "\\":
                pieces.append(char)
                index += 1
                continue
            code = text[index + 1:index + 2]
            if code in ("u", "x"):
                width = 4 if code == "u" else 2
                digits = text[index + 2:index + 2 + width]
                if not re.fullmatch(f"[0-9A-Fa-f]{{{width}}}", digits):
                    self.position = index
                    raise self.fail("bad escape")
                pieces.append(chr(int(digits, 16)))
                index += 2 + width
                continue
            pieces.append(_ESCAPES.get(code, code))
            index += 2
        raise self.fail("unterminated string")


def parse_js_literal(text: str, start: int = 0) -> tuple[Any, int]:
    """(value, end offset) of the data-only JS literal starting at `start` (after spaces)."""
    parser = _LiteralParser(text, start)
    value = parser.value()
    return value, parser.position


def module_exports(source: str) -> Any:
    """The literal a bundled JS module assigns to `module.exports` (exactly one such literal)."""
    matches = list(_EXPORTS.finditer(source))
    if len(matches) != 1:
        raise JsLiteralError(f"expected one `exports = <literal>`, found {len(matches)}")
    value, end = parse_js_literal(source, matches[0].end())
    following = source[end:end + 1]
    if following not in ("}", ";", ",", ""):
        raise JsLiteralError(f"unexpected {source[end:end + 20]!r} after the exported literal")
    return value


def dequantise(stored: np.ndarray, quantization: dict[str, Any] | None) -> np.ndarray:
    """float32 values of one manifest entry's stored elements, computed as tfjs does.

    Affine uint8/uint16 entries are `q * scale + min`; tfjs evaluates that in JS doubles and
    stores float32, so the product is taken in float64 and rounded once.
    """
    if quantization is None:
        return stored.astype(np.float32)
    kind = quantization.get("dtype")
    if kind == "float16":
        return stored.astype(np.float32)
    if kind in ("uint8", "uint16") and "scale" in quantization and "min" in quantization:
        values = stored.astype(np.float64) * float(quantization["scale"]) + float(
            quantization["min"])
        return values.astype(np.float32)
    raise WeightImportError(f"unsupported weight quantization {quantization!r}")


def decode_weights(manifest: list[dict[str, Any]],
                   shard_bytes: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Name -> float32 array (TensorFlow layout) for every entry of a tfjs weights manifest.

    Each group's shards are concatenated in order and its entries read back to back; a group
    whose bytes are not used up exactly is an error, so a truncated or reordered file cannot
    be half-read.
    """
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join(shard_bytes[path] for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            quantization = spec.get("quantization")
            stored_name = quantization["dtype"] if quantization else spec["dtype"]
            if stored_name not in _STORED_DTYPES:
                raise WeightImportError(f"{spec['name']}: unsupported dtype {stored_name!r}")
            stored_dtype = np.dtype(_STORED_DTYPES[stored_name]).newbyteorder("<")
            shape = tuple(int(size) for size in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            size = count * stored_dtype.itemsize
            if offset + size > len(data):
                raise WeightImportError(f"{spec['name']}: weight data ends early")
            stored = np.frombuffer(data, dtype=stored_dtype, count=count, offset=offset)
            offset += size
            if spec["name"] in weights:
                raise WeightImportError(f"weight {spec['name']!r} appears twice")
            weights[spec["name"]] = dequantise(stored, quantization).reshape(shape)
        if offset != len(data):
            raise WeightImportError(f"shards {group['paths']}: {len(data) - offset} bytes unused")
    return weights


@dataclass(frozen=True)
class TfjsModel:
    """One tfjs model as data: its topology (layers or graph) and its dequantised weights."""

    format: str  # "layers-model" or "graph-model"
    topology: dict[str, Any]
    weights: dict[str, np.ndarray]


def read_tfjs_model(tarball: Path, model_dir: str) -> TfjsModel:
    """Read `model.min.js` and its shards from `model_dir` (e.g. "dist/models/mobilenet_v2")
    inside an npm tarball, in one pass over the archive."""
    prefix = f"{TARBALL_ROOT}/{model_dir.strip('/')}/"
    sources: dict[str, str] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(
                    ".min.js"):
                handle = archive.extractfile(member)
                name = member.name[len(prefix):].removesuffix(".min.js")
                sources[name] = handle.read().decode("utf-8")
    if "model" not in sources:
        raise WeightImportError(f"{tarball.name} has no {prefix}model.min.js")
    model = module_exports(sources.pop("model"))
    if not isinstance(model, dict) or "modelTopology" not in model:
        raise WeightImportError(f"{prefix}model.min.js exports no modelTopology")
    manifest = model["weightsManifest"]
    wanted = {path for group in manifest for path in group["paths"]}
    missing = sorted(wanted - set(sources))
    if missing:
        raise WeightImportError(f"{tarball.name} lacks shards {missing} under {prefix}")
    shard_bytes = {}
    for path in wanted:
        text = module_exports(sources[path])
        if not isinstance(text, str):
            raise WeightImportError(f"{path}.min.js does not export a base64 string")
        shard_bytes[path] = base64.b64decode(text, validate=True)
    return TfjsModel(format=model.get("format", "layers-model"),
                     topology=model["modelTopology"],
                     weights=decode_weights(manifest, shard_bytes))
