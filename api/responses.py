"""JSON responses and the error handlers: every error is ``{"error", "message"}`` JSON."""
from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.params import ParamError
from core.errors import OllyStackError, WarehouseError, WarehouseUnavailableError

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
_HTTP_ERRORS = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


class NotFoundError(OllyStackError):
    """Nothing is stored under what the request names (HTTP 404)."""


class JsonResponse(Response):
    """JSON through orjson: fast for large lookups; NaN and infinities become null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(status: int, error: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": error, "message": message, **extra}, status_code=status)


async def param_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ParamError):  # registered for ParamError alone
        raise exc
    return error_response(400, "invalid_parameter", str(exc), parameter=exc.parameter)


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "not_found", str(exc))


async def warehouse_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, WarehouseUnavailableError):
        response = error_response(503, "warehouse_unavailable",
                                  "the warehouse cannot be reached; retry later")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    # The statement and its parameters stay in the log: they are not the client's business.
    log.error("query failed on %s: %s", request.url.path, exc)
    return error_response(500, "warehouse_error", "the query failed; see the API's log")


async def http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException alone
        raise exc
    error = _HTTP_ERRORS.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, error, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


EXCEPTION_HANDLERS = {
    ParamError: param_error,
    NotFoundError: not_found,
    WarehouseError: warehouse_error,
    HTTPException: http_error,
}
