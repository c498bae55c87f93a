"""OpenAPI paths and schemas of NLQ, chat and explanations (api/routes/nlq.py, api/routes/explain.py)."""
from __future__ import annotations

from typing import Any

from api.nlq.chat import CHAT_ROLES, MAX_MESSAGE_CHARS, MAX_MESSAGES
from api.nlq.guard import MAX_SQL_CHARS
from api.nlq.nlq import MAX_QUESTION_CHARS
from api.openapi_params import error_responses, json_content
from api.openapi_schemas import BOOL, INT, STR, Schema, array, nullable, obj, ref

GUARD_DOC = (
    "The guard runs one read-only SELECT (WITH and UNION of SELECTs allowed) over OllyStack's allowlisted "
    "tables and columns, parsed with sqlglot's ClickHouse dialect. Refused, with 400 and the rule named: other "
    "statements (select_only), several statements (one_statement), comments (comment), table functions "
    "(table_function), system and information_schema tables (system_table), other databases (database), "
    "tables (table) and columns (column) outside the allowlist, SETTINGS (settings), FORMAT (format), "
    "INTO OUTFILE (into_outfile), SELECT INTO (into), query parameters (parameter), functions reaching outside "
    "the tables (function), a LIMIT above the cap (limit), IN <table> (in_table), CTEs or aliases named like "
    "tables (cte_name), naming tenants with a tenant's key (tenant). Every table read "
    "is restricted to the caller's tenant; a missing LIMIT is set to the cap; the query runs with readonly=1, "
    "max_execution_time and max_memory_usage (over a cap: 400 naming it; an engine error: 400 'execution').")
_ERRORS = {
    "400": "a body field is invalid (`parameter`), no model is configured (error no_model), or the guard refused "
           "the query (error query_refused, `rule` names the rule)",
    "401": "API key missing or unknown (auth on)",
    "500": "the query failed (see the API's log)",
    "502": "the language model failed or answered without usable SQL",
    "503": "the warehouse is unreachable; retry after Retry-After seconds",
    "504": "the language model did not answer within OLLYSTACK_LLM_TIMEOUT_S",
}
NLQ_SCHEMAS: dict[str, Schema] = {
    "NlqAnswer": obj({"sql": STR, "executed_sql": STR, "columns": array(STR), "rows": array({"type": "object"}),
                      "explanation": STR, "row_count": INT, "limit_added": BOOL}),
    "ChatAnswer": obj({"message": obj({"role": STR, "content": STR}),
                       "tool_calls": array(obj({"name": STR, "arguments": STR, "error": nullable(STR)})),
                       "turns": INT, "stopped": nullable(STR)}),
    "Explanation": obj({"explained_by": {"type": "string", "enum": ["llm", "rules"]}, "model": nullable(STR),
                        "summary": STR, "evidence": array({"type": "object"}), "recommendations": array(STR),
                        "unsupported_claims": array(obj({"kind": STR, "name": STR, "reason": STR})),
                        "fallback_reason": nullable(STR)}),
}


def _post(summary: str, body: Schema, ok: Schema, doc: str) -> Schema:
    return {"post": {"summary": summary, "description": doc, "parameters": [],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": {"200": json_content(ok, "OK"),
                                   **{code: json_content(ref("Error"), text) for code, text in _ERRORS.items()}}}}


def _one_field(name: str, schema: Schema) -> Schema:
    return {"type": "object", "additionalProperties": False, "required": [name], "properties": {name: schema}}


def nlq_paths() -> dict[str, Any]:
    """The NLQ and chat paths (merged into the document by api/openapi.py)."""
    nlq_body = {"oneOf": [
        _one_field("question", {"type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS,
                                "description": "a question in plain language; needs OLLYSTACK_LLM_MODEL"}),
        _one_field("sql", {"type": "string", "minLength": 1, "maxLength": MAX_SQL_CHARS,
                           "description": "a ClickHouse SELECT to run through the guard"})]}
    nlq = _post("Answer a question with SQL the model writes (or run given SQL), through the SQL guard", nlq_body,
                ref("NlqAnswer"), GUARD_DOC)
    message = {"type": "object", "additionalProperties": False, "required": ["role", "content"], "properties": {
        "role": {"type": "string", "enum": sorted(CHAT_ROLES)},
        "content": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS}}}
    chat_body = {"type": "object", "additionalProperties": False, "required": ["messages"], "properties": {
        "messages": {"type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": message,
                     "description": "the conversation so far; the last message is the user's"}}}
    chat = _post("One assistant turn: the model answers, calling tools (correlation lookup, guarded SQL, analyses)",
                 chat_body, ref("ChatAnswer"),
                 "Needs OLLYSTACK_LLM_MODEL. Tools run in the caller's tenant scope; model turns and tool calls per "
                 "request are bounded (OLLYSTACK_LLM_CHAT_MAX_TURNS, OLLYSTACK_LLM_CHAT_MAX_TOOL_CALLS).")
    return {"/api/v1/nlq": nlq, "/api/v1/ai/nlq": nlq, "/api/v1/chat": chat}


def enhanced_paths(body: Schema, findings: Schema) -> dict[str, Any]:
    """The /api/v1/rca/enhanced paths for the route api/routes/explain.py builds: ``body`` is
    the analysis' request schema, ``findings`` its answer's (an ``explanation`` is added)."""
    answer = {"allOf": [findings, obj({"explanation": ref("Explanation")})]}
    operation = {"post": {
        "summary": "An analysis and its explanation for an on-call engineer", "parameters": [],
        "description": "The findings are computed from the data; a language model (OLLYSTACK_LLM_MODEL) only "
                       "explains them, and names it uses that the findings do not hold are listed under "
                       "unsupported_claims. With no model, or a failing one, explained_by is 'rules': the "
                       "answer never fails because of the model.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": json_content(answer, "the findings with an explanation"), **error_responses(404)}}}
    return {"/api/v1/rca/enhanced": operation, "/api/v1/ai/rca/enhanced": operation}
