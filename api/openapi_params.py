"""The building blocks of the OpenAPI document: shared parameters and operation shapes."""
from __future__ import annotations

from api.openapi_schemas import Schema, ref
from api.params import NAME_MAX_CHARS, Limits

OBJECT: Schema = {"type": "object"}
LIMITS = Limits()
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+\-]*$"
TIME_DOC = ("ISO-8601 date-time (UTC unless an offset is given, up to nine decimals) or Unix time in "
            "milliseconds. end defaults to now, start to end minus one hour; at most "
            f"{LIMITS.max_window_s // 86400} days apart.")
TEXT_DOC = ("Printable text; values with markup, script URLs, SQL fragments (quotes, ';', '--', "
            "comments, injection phrases) or path traversal are refused with 400.")


def param(name: str, where: str, schema: Schema, doc: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": doc}


def name_param(name: str, doc: str, where: str = "query") -> Schema:
    return param(name, where, {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS,
                               "pattern": NAME_PATTERN}, doc)


CORRELATION_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9._:\-/=+@]+$",
                  "description": "an ID the pipeline's validator accepts (charset, length, no injection "
                                 "patterns; IDs starting olly- must be olly-<base36>-<8 hex>)"}
TRACE_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{32}$", "description": "W3C trace ID, 32 hex digits"}
P_CID = param("correlation_id", "path", CORRELATION_ID, "the correlation ID")
P_TRACE = param("trace_id", "path", TRACE_ID, "the trace ID")
P_START = param("start", "query", {"type": "string"}, TIME_DOC)
P_END = param("end", "query", {"type": "string"}, TIME_DOC)
P_LIMIT = param("limit", "query", {"type": "integer", "minimum": 1, "maximum": LIMITS.max_limit},
                 f"page size, default {LIMITS.default_limit}")
P_OFFSET = param("offset", "query", {"type": "integer", "minimum": 0, "maximum": LIMITS.max_offset},
                  "rows to skip (offset pagination: pass the answer's next_offset)")
P_SERVICE = name_param("service", "service.name of the resource")
P_DURATION = {"type": "number", "minimum": 0, "maximum": 86_400_000_000}


def json_content(schema: Schema, doc: str) -> Schema:
    return {"description": doc, "content": {"application/json": {"schema": schema}}}


def error_responses(*codes: int) -> dict[str, Schema]:
    docs = {400: "a parameter is invalid; `parameter` names it", 401: "API key missing or unknown (auth on)",
            404: "nothing stored under the ID", 500: "the query failed (see the API's log)",
            503: "the warehouse is unreachable; retry after Retry-After seconds"}
    return {str(code): json_content(ref("Error"), docs[code]) for code in (400, 401, *codes, 500, 503)}


def get_operation(summary: str, params: list[Schema], ok: Schema, *codes: int, doc: str = "") -> Schema:
    return {"get": {"summary": summary, "description": doc, "parameters": params,
                    "responses": {"200": json_content(ok, "OK"), **error_responses(*codes)}}}


def post_operation(summary: str, fields: dict[str, Schema], required: list[str], doc: str) -> Schema:
    body = {"type": "object", "additionalProperties": False, "properties": fields, "required": required}
    return {"post": {"summary": summary, "description": doc, "parameters": [],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": json_content(OBJECT, "OK"), **error_responses()}}}
