"""JSON request bodies: one reader for every POST route, fields checked like query parameters."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request

from api import params as p

BODY_MAX_BYTES = 16 * 1024


def _shown(name: str) -> str:
    return name[:64].encode("unicode_escape").decode()


async def json_object(request: Request, allowed: frozenset[str] | None = None, *,
                      max_bytes: int = BODY_MAX_BYTES) -> dict[str, Any]:
    """The body as a JSON object ({} when empty). ParamError (400) when it is larger than
    ``max_bytes``, not JSON, not an object, or names a field outside ``allowed``."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise p.ParamError("body", f"larger than {max_bytes} bytes")
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise p.ParamError("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise p.ParamError("body", "must be a JSON object")
    if allowed is not None:
        for name in data:
            if name not in allowed:
                raise p.ParamError(_shown(name), f"unknown field; allowed: {', '.join(sorted(allowed))}")
    return data


def text_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """Scalar fields as text (numbers as written), so the query-parameter checks of
    api/params.py apply to them; ParamError for other types or over-long values."""
    out: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise p.ParamError(_shown(name), "must be a string or a number")
        text = value if isinstance(value, str) else repr(value)
        if len(text) > p.MAX_VALUE_CHARS:
            raise p.ParamError(_shown(name), f"longer than {p.MAX_VALUE_CHARS} characters")
        out[name] = text
    return out
