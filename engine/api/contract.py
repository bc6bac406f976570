"""Request validation against botocore's bundled Rekognition service model.

The model is loaded at run time (never copied) and is the single source of truth for member
names, types, required members, lengths, ranges, patterns and enums. botocore checks only
`required` and `min` on the client side; everything else is checked here, so a malformed
request is an InvalidParameterException naming the member, the bad value and what is allowed.
This module knows nothing about jobs, storage or HTTP.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import botocore.loaders
from botocore.model import OperationModel, ServiceModel, Shape

from engine.errors import InvalidParameterException, UnknownOperationException

SERVICE_NAME = "rekognition"
_QUOTED_VALUE_LIMIT = 80


@lru_cache(maxsize=1)
def load_service_model() -> ServiceModel:
    """Rekognition's contract as botocore ships it (cached: loading takes ~100 ms)."""
    document = botocore.loaders.Loader().load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(document, service_name=SERVICE_NAME)


def target_prefix() -> str:
    return load_service_model().metadata["targetPrefix"]


def operation_for_target(target: str | None, offered: set[str]) -> OperationModel:
    """Resolve `X-Amz-Target: RekognitionService.<Operation>` to an operation we serve."""
    prefix = target_prefix() + "."
    name = (target or "")[len(prefix) :] if (target or "").startswith(prefix) else ""
    if name not in offered:
        raise UnknownOperationException(f"Operation {target!r} is not supported by this service")
    return load_service_model().operation_model(name)


def validate_request(operation: OperationModel, body: Any) -> dict:
    """Check a parsed JSON body against the operation's input shape; return it with its null
    members removed (in place)."""
    if not isinstance(body, dict):
        raise InvalidParameterException("The request body must be a JSON object")
    _check_value(operation.input_shape, body, path="")
    return body


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _quote(value: Any) -> str:
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # absurdly nested JSON, or an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _QUOTED_VALUE_LIMIT else text[:_QUOTED_VALUE_LIMIT] + "..."


def _check_value(shape: Shape, value: Any, path: str) -> None:
    checker = _CHECKERS.get(shape.type_name)
    if checker is None:  # a type these operations never use: accept what JSON gives
        return
    checker(shape, value, path or shape.name)


def _check_structure(shape: Shape, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise InvalidParameterException(f"{path} must be an object, got {_quote(value)}")
    for required in shape.required_members:
        if value.get(required) is None:
            raise InvalidParameterException(f"{_join(path, required)} is required")
    for name in [name for name, member_value in value.items() if member_value is None]:
        del value[name]  # AWS treats a JSON null member as absent; handlers never see None
    for name, member_value in value.items():
        member_shape = shape.members.get(name)
        if member_shape is None:
            raise InvalidParameterException(
                f"{_join(path, name)} is not a member of {shape.name}; allowed: {sorted(shape.members)}"
            )
        _check_value(member_shape, member_value, _join(path, name))


def _join(path: str, name: str) -> str:
    return name if not path or path.endswith("Request") else f"{path}.{name}"


def _check_string(shape: Shape, value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise InvalidParameterException(f"{path} must be a string, got {_quote(value)}")
    _check_bounds(shape, len(value), path, value, "length")
    enum = shape.enum
    if enum and value not in enum:
        raise InvalidParameterException(f"{path} must be one of {list(enum)}, got {_quote(value)}")
    pattern = shape.metadata.get("pattern")
    # Patterns in the model are a mix of anchored and unanchored; the whole value must match.
    if pattern and not _compiled(pattern).fullmatch(value):
        raise InvalidParameterException(
            f"{path} {_quote(value)} does not match the pattern {pattern}"
        )


def _check_integer(shape: Shape, value: Any, path: str) -> None:
    whole_float = isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, int) or whole_float):
        raise InvalidParameterException(f"{path} must be an integer, got {_quote(value)}")
    _check_bounds(shape, value, path, value, "value")


def _check_float(shape: Shape, value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise InvalidParameterException(f"{path} must be a number, got {_quote(value)}")
    _check_bounds(shape, value, path, value, "value")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False


def _check_boolean(shape: Shape, value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterException(f"{path} must be true or false, got {_quote(value)}")


def _check_list(shape: Shape, value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise InvalidParameterException(f"{path} must be a list, got {_quote(value)}")
    _check_bounds(shape, len(value), path, value, "length")
    for position, item in enumerate(value):
        _check_value(shape.member, item, f"{path}[{position}]")


def _check_bounds(shape: Shape, measure: float, path: str, value: Any, what: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and measure < low:
        raise InvalidParameterException(f"{path} {what} must be >= {low}, got {_quote(value)}")
    if high is not None and measure > high:
        raise InvalidParameterException(f"{path} {what} must be <= {high}, got {_quote(value)}")


_CHECKERS = {
    "structure": _check_structure,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_float,
    "double": _check_float,
    "boolean": _check_boolean,
    "list": _check_list,
}
