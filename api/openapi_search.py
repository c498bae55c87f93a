"""OpenAPI parts of attribute and word search (traces, logs) and of the correlation list."""
from __future__ import annotations

from typing import Any

from api.conditions import MAX_CONDITIONS, VALUE_MAX_CHARS
from api.openapi_params import P_END, P_LIMIT, P_OFFSET, P_SERVICE, P_START, get_operation, param
from api.openapi_schemas import INT, NEXT, NUM, RANGE, STR, TS, Schema, array, obj, ref
from api.params import ATTRIBUTE_KEY_RULE, MAX_TOKENS, MAX_VALUE_CHARS

_TAGS_DOC = (
    "Attribute conditions, all of which one {row} must meet: `key<op>value` separated by spaces (or `&&`), "
    "as in Jaeger's and Tempo's `tags` with TraceQL's operators `=`, `!=`, `<`, `<=`, `>`, `>=`. "
    "Prefix a key with `{prefix}.` for the {row}'s own attributes or `resource.` for its resource's; "
    "without a prefix either may match. A bare number (`42`, `-1.5`, `2e3`) compares as a number (`<`, `<=`, "
    "`>`, `>=` numerically; `=`, `!=` with the text numbers are stored as, so `42` matches 42, 42.0 and \"42\" "
    "but not \"042\"), everything else and every quoted value as text; quote values holding spaces or `=`: "
    "`key=\"a b=c\"` (escape `\\\"` and `\\\\`). "
    "Every condition needs the attribute to be present, so `!=` does not match a {row} without it. "
    f"Keys: {ATTRIBUTE_KEY_RULE}; values up to {VALUE_MAX_CHARS} "
    f"characters, no control characters; at most {MAX_CONDITIONS} conditions. A syntax error is a 400 "
    "naming `tags` and the condition.")


def _tags(row: str, prefix: str, examples: dict[str, str]) -> Schema:
    doc = _TAGS_DOC.format(row=row, prefix=prefix)
    return {**param("tags", "query", {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS}, doc),
            "examples": {name: {"value": value} for name, value in examples.items()}}


P_SPAN_TAGS = _tags("span", "span", {
    "route": "http.route=/orders",
    "and": 'span.http.route="/orders" && resource.service.name=checkout',
    "numeric": "http.response.status_code>=500 customer.id=42",
    "quoted": 'db.query.text="SELECT * FROM t WHERE a = 1"',
})
P_LOG_TAGS = _tags("log record", "log", {
    "attribute": "order.id=7f3a9c",
    "and": "log.http.response.status_code>=500 resource.deployment.environment.name=prod",
})
P_TOKENS = {**param(
    "tokens", "query", {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS},
    "Whole words the body must all hold, in any order and case (ASCII letters): the text is split at every "
    "ASCII character that is not a letter or digit, as the body's token index splits it, so `card declined` "
    f"and `card,DECLINED` are the same search and `declin` finds nothing (use `text` for substrings). "
    f"At most {MAX_TOKENS} words."),
    "examples": {"words": {"value": "card declined"}}}

P_SORT = param("sort", "query", {"type": "string", "enum": ["recent", "failing", "slow"]},
               "recent (default): the latest last_seen first; failing: the most errors (error spans plus error "
               "logs) first; slow: the longest span first. Ties go to the latest last_seen.")

CORRELATION_ITEM = obj({
    "correlation_id": STR, "first_seen": TS, "last_seen": TS,
    "duration_ms": {**NUM, "description": "from the first to the last span or log start"},
    "services": array(STR), "trace_count": INT, "span_count": INT, "log_count": INT,
    "error_count": {**INT, "description": "error_spans + error_logs"}, "error_spans": INT, "error_logs": INT,
    "max_span_duration_ms": NUM,
    "link": {**STR, "description": "the ID's full lookup: /api/v1/correlate/{correlation_id}, the ID encoded"},
})
SEARCH_SCHEMAS: dict[str, Schema] = {
    "CorrelationList": obj({"correlations": array(CORRELATION_ITEM),
                            "sort": {"type": "string", "enum": ["recent", "failing", "slow"]},
                            "time_range": RANGE, "limit": INT, "offset": INT, "next_offset": NEXT}),
}


def correlation_paths() -> dict[str, Any]:
    """The correlation list (merged into the document by api/openapi.py)."""
    return {"/api/v1/correlations": get_operation(
        "Correlation IDs active in a time range: recent, failing or slow first",
        [P_SORT, P_SERVICE,
         param("has_errors", "query", {"type": "string", "enum": ["true", "false"]},
               "true: only IDs with an error span or error log; false: only IDs without"),
         P_START, P_END, P_LIMIT, P_OFFSET], ref("CorrelationList"),
        doc="Read from the correlation index. An ID is listed when its first-to-last span or log overlaps "
            "[start, end); with service, when that service sent any of its spans or logs. Counts are "
            "distinct spans and logs; error logs are those with SeverityNumber >= 17. Generated IDs "
            "(olly-...) are listed too: a trace without an ID of its own has one, and spans stored "
            "before their trace's ID arrived keep theirs.")}
