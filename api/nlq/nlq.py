"""Natural-language queries: the model writes SQL, the guard decides whether it runs, the warehouse answers."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from api.llm.client import LlmClient, LlmError
from api.nlq.guard import Caps, GuardedQuery, GuardError, guard_sql
from api.nlq.schema import schema_text
from api.queries.scope import QueryScope
from core.errors import OllyStackError, WarehouseError, WarehouseUnavailableError
from core.settings import LlmSettings
from sinks.warehouse import Warehouse

MAX_QUESTION_CHARS = 2000
# ClickHouse errors that mean the query hit one of the guard's caps.
_CAP_ERRORS = {"TIMEOUT_EXCEEDED": "max_execution_time", "MEMORY_LIMIT_EXCEEDED": "max_memory_usage"}
SQL_PROMPT = (
    "You write one ClickHouse SELECT query that answers the user's question about observability data. "
    "Use only these tables and columns:\n{schema}\n"
    "Rules: one SELECT (WITH and UNION ALL allowed), no comments, no SETTINGS, no FORMAT, no table functions, "
    "no system tables, LIMIT at most {max_rows}. Timestamps are DateTime64(9); use now() - INTERVAL for "
    "relative times. Tenancy is applied for you: never filter on tenant. "
    'Answer with one JSON object and nothing else: {{"sql": "<the query>", "explanation": "<one sentence>"}}')


class QueryRefusedError(OllyStackError):
    """The query cannot run as asked: refused by the guard, or failed in the engine (HTTP 400)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class NoModelError(OllyStackError):
    """A question needs a model and none is configured (HTTP 400 naming OLLYSTACK_LLM_MODEL)."""


@dataclass(frozen=True)
class QueryAnswer:
    sql: str
    executed_sql: str
    columns: list[str]
    rows: list[dict[str, Any]]
    explanation: str
    limit_added: bool

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "executed_sql": self.executed_sql, "columns": self.columns, "rows": self.rows,
                "explanation": self.explanation, "row_count": len(self.rows), "limit_added": self.limit_added}


def caps_of(settings: LlmSettings) -> Caps:
    return Caps(settings.nlq_max_rows, settings.nlq_max_execution_s, settings.nlq_max_memory_bytes)


def guard(sql: str, scope: QueryScope, caps: Caps) -> GuardedQuery:
    """guard_sql for ``scope``; QueryRefusedError naming the broken rule."""
    try:
        return guard_sql(sql, database=scope.database, tenant=scope.tenant, caps=caps)
    except GuardError as exc:
        raise QueryRefusedError(exc.rule, f"the query was refused ({exc.rule}): {exc.detail}") from None


async def run_sql(warehouse: Warehouse, sql: str, scope: QueryScope, caps: Caps,
                  explanation: str = "") -> QueryAnswer:
    """Guard ``sql`` and run it. Raises QueryRefusedError (refused, over a cap, or failed in
    the engine), WarehouseUnavailableError when the warehouse cannot be reached."""
    guarded = guard(sql, scope, caps)
    try:
        rows = await asyncio.to_thread(warehouse.query, guarded.sql, guarded.params)
    except WarehouseError as exc:
        message = str(exc)
        for name, cap in _CAP_ERRORS.items():
            if name in message:
                raise QueryRefusedError(cap, f"the query went over the {cap} cap") from None
        if isinstance(exc, WarehouseUnavailableError):
            raise
        first = message.splitlines()[0] if message else "failed"
        raise QueryRefusedError("execution", f"the query failed in the engine: {first[:300]}") from None
    columns = list(rows[0]) if rows else list(guarded.columns)
    return QueryAnswer(sql, guarded.sql, columns, rows, explanation or "the query as given, run through the guard",
                       guarded.limit_added)


def sql_messages(question: str, caps: Caps) -> list[dict[str, str]]:
    return [{"role": "system", "content": SQL_PROMPT.format(schema=schema_text(), max_rows=caps.max_rows)},
            {"role": "user", "content": question}]


def parse_sql_answer(content: str) -> tuple[str, str]:
    """(sql, explanation) from the model's JSON answer; a bare query is taken as the SQL."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").removeprefix("sql").strip()
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            answer = orjson.loads(text[start:end + 1])
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("sql"), str):
            return answer["sql"], str(answer.get("explanation") or "")
    if text.upper().startswith(("SELECT", "WITH")):
        return text, ""
    raise LlmError("the model's answer holds no SQL")


async def answer_question(warehouse: Warehouse, client: LlmClient | None, question: str, scope: QueryScope,
                          caps: Caps) -> QueryAnswer:
    """Ask the model for SQL answering ``question``, guard it and run it.

    Raises NoModelError without a model, LlmError (LlmTimeoutError) when the model fails,
    QueryRefusedError when its SQL is refused or fails, WarehouseUnavailableError."""
    if client is None:
        raise NoModelError("a question needs a language model: set OLLYSTACK_LLM_MODEL "
                           "(or send {\"sql\": ...} to run SQL through the guard)")
    reply = await client.complete(sql_messages(question, caps), json_answer=True)
    sql, explanation = parse_sql_answer(reply.content)
    return await run_sql(warehouse, sql, scope, caps, explanation or f"SQL written by {client.model}")
