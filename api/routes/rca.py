"""/api/v1/analyze and /api/v1/rca (and their /api/v1/ai/ aliases): root-cause analysis of
one request (``correlation_id`` or ``trace_id``) or of an incident (a time window or an alert).

The body's keys choose the analysis; ``dispatch`` is the one place that does it."""
from __future__ import annotations

from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.queries.correlation import CorrelationRows
from api.queries.trace_rows import load_trace
from api.rca.request import analyze_request
from api.responses import JsonResponse, NotFoundError
from api.routes.incidents import incident_rca
from api.runtime import runtime

BODY_MAX_BYTES = 16 * 1024
REQUEST_FIELDS = frozenset({"correlation_id", "trace_id"})
INCIDENT_FIELDS = frozenset({"start", "end", "service", "alert_fingerprint"})
ACCEPTED = ("a request: {\"correlation_id\"} or {\"trace_id\"}; an incident: {\"start\", \"end\", \"service\"?} "
            "or {\"alert_fingerprint\"}")


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body; ParamError (400) naming ``body`` otherwise."""
    raw = await request.body()
    if len(raw) > BODY_MAX_BYTES:
        raise p.ParamError("body", f"larger than {BODY_MAX_BYTES} bytes")
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise p.ParamError("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise p.ParamError("body", f"must be a JSON object naming {ACCEPTED}")
    return data


def analysis_kind(body: dict[str, Any]) -> Literal["request", "incident"]:
    """``request`` when the body names a correlation or trace ID, ``incident`` when it names
    a window or an alert; ParamError otherwise."""
    if REQUEST_FIELDS & body.keys():
        return "request"
    if INCIDENT_FIELDS & body.keys():
        return "incident"
    raise p.ParamError("body", f"names nothing to analyse; accepted: {ACCEPTED}")


def _text_field(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise p.ParamError(name, "must be a string")
    if len(value) > p.MAX_VALUE_CHARS:
        raise p.ParamError(name, f"longer than {p.MAX_VALUE_CHARS} characters")
    return value


async def request_rows(request: Request, body: dict[str, Any]) -> CorrelationRows:
    """The rows of the correlation ID or trace the body names, in the caller's tenant scope;
    NotFoundError (404) when nothing visible is stored under it."""
    for name in body:
        if name not in REQUEST_FIELDS:
            shown = str(name)[:64].encode("unicode_escape").decode()
            raise p.ParamError(shown, "unknown field; a request analysis takes correlation_id or trace_id")
    if len(body) != 1:
        raise p.ParamError("body", "give correlation_id or trace_id, not both")
    rt = runtime(request)
    scope = rt.scope(request)
    if "correlation_id" in body:
        cid = p.correlation_id(_text_field(body, "correlation_id"))
        rows = await rt.correlation(scope, cid)
        if rows.empty:
            raise NotFoundError(f"no spans, logs or metrics are stored under correlation ID {cid!r}")
        return rows
    trace_id = p.trace_id(_text_field(body, "trace_id"))
    rows = await load_trace(rt.warehouse, scope, trace_id, rt.limits)
    if rows.empty:
        raise NotFoundError(f"no spans, logs or metrics are stored for trace {trace_id}")
    return rows


async def request_analysis(request: Request, body: dict[str, Any]) -> Response:
    """Critical path, error origin, slowest self times, services, root cause and evidence."""
    return JsonResponse(analyze_request(await request_rows(request, body)))


async def incident_analysis(request: Request, body: dict[str, Any]) -> Response:
    """Incident analysis over a window or an alert (api/routes/incidents.py)."""
    return await incident_rca(request, body)


async def dispatch(request: Request) -> Response:
    """THE DISPATCH POINT: request analysis for correlation_id / trace_id, incident
    analysis (``incident_analysis``) for start / end / service / alert_fingerprint."""
    p.query_params(request, frozenset())
    body = await json_object(request)
    if analysis_kind(body) == "incident":
        return await incident_analysis(request, body)
    return await request_analysis(request, body)


PATHS = ("/api/v1/analyze", "/api/v1/rca", "/api/v1/ai/analyze", "/api/v1/ai/rca")
ROUTES = [Route(path, dispatch, methods=["POST"]) for path in PATHS]
