"""OTLP/JSON to protobuf messages and back: hex IDs, integer enums, 64-bit ints as strings."""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from core.errors import DecodeError

M = TypeVar("M", bound=Message)
_IdConverter = Callable[[Any, int, str], str]

# OTLP/JSON writes these bytes fields as hex, where the proto3 JSON mapping uses base64.
_ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram")


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _get(obj: dict[str, Any], key: str) -> tuple[str, Any]:
    # OTLP requires lowerCamelCase keys, but the proto field names parse too (ParseDict
    # accepts both), so IDs under either spelling must be converted alike.
    if key in obj:
        return key, obj[key]
    snake = _snake(key)
    return snake, obj.get(snake)


def _each(obj: dict[str, Any], key: str, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    name, items = _get(obj, key)
    if items is None:
        return
    where = f"{path}.{name}" if path else name
    if not isinstance(items, list):
        raise DecodeError(f"{where}: expected an array")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeError(f"{where}[{i}]: expected an object")
        yield item, f"{where}[{i}]"


def _hex_to_base64(value: Any, size: int, path: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{path}: expected a hex string, got {type(value).__name__}")
    if value == "":
        return ""
    try:
        raw = bytes.fromhex(value) if len(value) == 2 * size else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise DecodeError(f"{path}: not {2 * size} hex characters")
    return base64.b64encode(raw).decode()


def _base64_to_hex(value: Any, size: int, path: str) -> str:
    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, TypeError) as exc:
        raise DecodeError(f"{path}: not base64: {exc}") from None


def _convert_ids(obj: dict[str, Any], path: str, convert: _IdConverter) -> None:
    for field, size in _ID_BYTES.items():
        name, value = _get(obj, field)
        if value is not None:
            obj[name] = convert(value, size, f"{path}.{name}")


def _walk_ids(root: dict[str, Any], convert: _IdConverter) -> None:
    """Convert every trace and span ID of a traces, logs or metrics request body."""
    for res, p1 in _each(root, "resourceSpans", ""):
        for scope, p2 in _each(res, "scopeSpans", p1):
            for span, p3 in _each(scope, "spans", p2):
                _convert_ids(span, p3, convert)
                for link, p4 in _each(span, "links", p3):
                    _convert_ids(link, p4, convert)
    for res, p1 in _each(root, "resourceLogs", ""):
        for scope, p2 in _each(res, "scopeLogs", p1):
            for log, p3 in _each(scope, "logRecords", p2):
                _convert_ids(log, p3, convert)
    for res, p1 in _each(root, "resourceMetrics", ""):
        for scope, p2 in _each(res, "scopeMetrics", p1):
            for metric, p3 in _each(scope, "metrics", p2):
                _walk_exemplars(metric, p3, convert)


def _walk_exemplars(metric: dict[str, Any], path: str, convert: _IdConverter) -> None:
    for kind in _METRIC_KINDS:
        name, data = _get(metric, kind)
        if isinstance(data, dict):
            for point, p1 in _each(data, "dataPoints", f"{path}.{name}"):
                for exemplar, p2 in _each(point, "exemplars", p1):
                    _convert_ids(exemplar, p2, convert)


def parse_otlp_json(data: bytes | str | dict[str, Any], message_type: type[M]) -> M:
    """Decode an OTLP/JSON body into ``message_type``.

    IDs are case-insensitive hex, enums integers (names are accepted too), 64-bit
    integers decimal strings or numbers; unknown fields are ignored. Raises DecodeError
    with a message naming the problem and, where known, its path in the document."""
    if isinstance(data, dict):
        root: Any = data
    else:
        try:
            root = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(root, dict):
        raise DecodeError(f"expected a JSON object at the top level, got {type(root).__name__}")
    _walk_ids(root, _hex_to_base64)
    try:
        return json_format.ParseDict(root, message_type(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise DecodeError(f"invalid OTLP JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("invalid OTLP JSON: nested too deeply") from None


def to_otlp_dict(message: Message) -> dict[str, Any]:
    """``message`` as an OTLP/JSON object: lowerCamelCase keys, hex IDs, integer enums,
    64-bit integers as strings, default values left out."""
    out = json_format.MessageToDict(message, use_integers_for_enums=True)
    _walk_ids(out, _base64_to_hex)
    return out


def to_otlp_json(message: Message) -> bytes:
    """``to_otlp_dict`` serialized as UTF-8 JSON."""
    return orjson.dumps(to_otlp_dict(message))
