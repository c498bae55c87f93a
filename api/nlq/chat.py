"""The chat assistant: a model that answers over tools (lookups, guarded SQL, and whatever is registered).

Each request is a bounded loop: at most ``max_turns`` model calls and ``max_tool_calls``
tool calls, every tool run in the caller's tenant scope, every tool result cut to the prompt
budget before the model sees it. Tools are plain async functions registered by name with a
JSON-schema of their arguments (OpenAI tool calling, which litellm maps to each provider)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.llm.client import LlmClient
from api.llm.findings import CHARS_PER_TOKEN, excerpt
from api.nlq.guard import Caps
from api.nlq.nlq import QueryRefusedError, run_sql
from api.nlq.schema import schema_text
from api.params import ParamError
from api.presentation.context import build_impact
from api.queries.scope import QueryScope
from api.rca.analyses import AnalysisContext, causal_findings, findings
from api.responses import NotFoundError
from api.runtime import ApiRuntime
from core.errors import OllyStackError, WarehouseError

SYSTEM_PROMPT = (
    "You are OllyStack's observability assistant. Answer from tool results only; say so when they do not "
    "hold the answer. Root causes come from the analysis tools, never from guesses. The run_sql tool takes "
    "one ClickHouse SELECT over these tables (tenancy and a LIMIT are applied for you):\n{schema}")
# A conversation as the chat route takes it: user and assistant turns, bounded.
MAX_MESSAGES = 40
MAX_MESSAGE_CHARS = 8000
CHAT_ROLES = frozenset({"user", "assistant"})
_TOOL_RESULT_SHARE = 4  # a tool result may take a quarter of the prompt budget


@dataclass(frozen=True)
class ChatContext:
    """What a tool may use: the runtime (warehouse, cache, limits), the caller's scope and the SQL caps."""

    runtime: ApiRuntime
    scope: QueryScope
    caps: Caps


ToolHandler = Callable[[Mapping[str, Any], ChatContext], Awaitable[Any]]


@dataclass(frozen=True)
class ChatTool:
    """A function the model may call: ``parameters`` is the JSON schema of its arguments;
    ``handler`` returns JSON-able data or raises ToolError (shown to the model)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    handler: ToolHandler

    def spec(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}}


class ToolError(OllyStackError):
    """A tool cannot answer these arguments; the message goes back to the model."""


@dataclass
class ToolRegistry:
    """The tools of the assistant, by name."""

    tools: dict[str, ChatTool] = field(default_factory=dict)

    def register(self, tool: ChatTool) -> None:
        """Add (or replace) ``tool``."""
        self.tools[tool.name] = tool

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self.tools.values()]


async def _lookup_correlation(args: Mapping[str, Any], ctx: ChatContext) -> Any:
    cid = args.get("correlation_id")
    if not isinstance(cid, str) or not cid.strip() or len(cid) > 128:
        raise ToolError("correlation_id must be a string of 1-128 characters")
    rows = await ctx.runtime.correlation(ctx.scope, cid.strip())
    if rows.empty:
        return {"correlation_id": cid, "found": False}
    return {"correlation_id": cid, "found": True, "trace_ids": rows.trace_ids[:20], "truncated": rows.truncated,
            **build_impact(rows)}


async def _run_sql(args: Mapping[str, Any], ctx: ChatContext) -> Any:
    sql = args.get("sql")
    if not isinstance(sql, str):
        raise ToolError("sql must be a string")
    try:
        answer = await run_sql(ctx.runtime.warehouse, sql, ctx.scope, ctx.caps)
    except QueryRefusedError as exc:
        raise ToolError(str(exc)) from None
    return {"columns": answer.columns, "rows": answer.rows, "row_count": len(answer.rows)}


def _analysis(run: Callable[[AnalysisContext, Mapping[str, Any]], Awaitable[Any]]) -> ToolHandler:
    """A tool over one of the analyses (api/rca/analyses.py): its 400s and 404s go back to
    the model as tool errors."""

    async def handler(args: Mapping[str, Any], ctx: ChatContext) -> Any:
        rt = ctx.runtime
        analysis = AnalysisContext(rt.warehouse, ctx.scope, rt.limits, rt.clock_ns(), rt.score, rt.correlation)
        try:
            return await run(analysis, args)
        except (ParamError, NotFoundError) as exc:
            raise ToolError(str(exc)) from None

    return handler


_WINDOW_PROPERTIES = {
    "start": {"type": "string", "description": "ISO-8601 date-time or Unix time in milliseconds"},
    "end": {"type": "string", "description": "ISO-8601 date-time or Unix time in milliseconds (default: now)"},
    "service": {"type": "string", "description": "the service whose symptoms to explain (optional)"},
    "alert_fingerprint": {"type": "string", "description": "an alert's fingerprint, instead of start/end"},
}


def default_tools() -> ToolRegistry:
    """The lookup, SQL and analysis tools; more can be registered on app.state.chat_tools."""
    registry = ToolRegistry()
    registry.register(ChatTool(
        "lookup_correlation", "Services, operations, errors and timings of one correlation ID (a request or flow).",
        {"type": "object", "properties": {"correlation_id": {"type": "string"}}, "required": ["correlation_id"]},
        _lookup_correlation))
    registry.register(ChatTool(
        "run_sql", "Run one read-only ClickHouse SELECT over the allowlisted tables and return its rows.",
        {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}, _run_sql))
    registry.register(ChatTool(
        "analyze_request", "Root cause of one request: critical path, error origin and evidence. Give exactly one "
        "of correlation_id or trace_id.",
        {"type": "object", "properties": {"correlation_id": {"type": "string"}, "trace_id": {"type": "string"}}},
        _analysis(findings)))
    registry.register(ChatTool(
        "analyze_incident", "Rank the services that may have caused an incident in a time window (or an alert's), "
        "with the evidence for each.", {"type": "object", "properties": _WINDOW_PROPERTIES}, _analysis(findings)))
    registry.register(ChatTool(
        "causal_chain", "The chain from an incident's root cause to its symptoms, a counterfactual computed from "
        "the traces, and the time-ordered events.", {"type": "object", "properties": _WINDOW_PROPERTIES},
        _analysis(causal_findings)))
    return registry


async def _call_tool(registry: ToolRegistry, name: str, arguments: str, ctx: ChatContext) -> tuple[Any, str | None]:
    tool = registry.tools.get(name)
    if tool is None:
        return None, f"unknown tool {name[:64]!r}"
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return None, "the arguments are not valid JSON"
    if not isinstance(args, dict):
        return None, "the arguments must be a JSON object"
    try:
        return await tool.handler(args, ctx), None
    except (ToolError, WarehouseError) as exc:
        return None, str(exc)[:500]


async def run_chat(client: LlmClient, registry: ToolRegistry, messages: list[dict[str, str]], ctx: ChatContext,
                   *, max_turns: int, max_tool_calls: int) -> dict[str, Any]:
    """Answer the conversation ``messages`` (user and assistant turns), calling tools as
    the model asks. Returns {message, tool_calls, turns, stopped}; ``stopped`` is
    "max_turns" when the turn bound ended the loop (tools are no longer offered once the
    tool call bound is spent). Raises LlmError (LlmTimeoutError) when the model fails."""
    budget = client.settings.max_prompt_tokens * CHARS_PER_TOKEN // _TOOL_RESULT_SHARE
    convo: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT.format(schema=schema_text())},
                                   *messages]
    trail: list[dict[str, Any]] = []
    for turn in range(1, max_turns + 1):
        offer = registry.specs() if len(trail) < max_tool_calls else []
        reply = await client.complete(convo, tools=offer)
        if not reply.tool_calls or not offer:
            return {"message": {"role": "assistant", "content": reply.content}, "tool_calls": trail,
                    "turns": turn, "stopped": None}
        convo.append(reply.raw_message)
        for call in reply.tool_calls:
            result: Any = None
            error: str | None = f"the tool call budget of {max_tool_calls} is spent"
            if len(trail) < max_tool_calls:
                result, error = await _call_tool(registry, call.name, call.arguments, ctx)
            trail.append({"name": call.name, "arguments": call.arguments[:2000], "error": error})
            content = excerpt({"error": error} if error else {"result": result}, budget)
            convo.append({"role": "tool", "tool_call_id": call.id, "content": content})
    return {"message": {"role": "assistant", "content": f"No final answer within {max_turns} model turns."},
            "tool_calls": trail, "turns": max_turns, "stopped": "max_turns"}
