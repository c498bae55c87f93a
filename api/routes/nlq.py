"""/api/v1/nlq (alias /api/v1/ai/nlq) and /api/v1/chat: questions answered by guarded SQL, and the assistant."""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.bodies import json_object
from api.llm.client import LlmClient, LlmError, LlmTimeoutError
from api.nlq.chat import CHAT_ROLES, MAX_MESSAGE_CHARS, MAX_MESSAGES, ChatContext, ToolRegistry, run_chat
from api.nlq.guard import MAX_SQL_CHARS
from api.nlq.nlq import MAX_QUESTION_CHARS, NoModelError, QueryRefusedError, answer_question, caps_of, run_sql
from api.responses import JsonResponse, error_response
from api.runtime import runtime
from core.settings import Settings

BODY_MAX_BYTES = 256 * 1024


async def json_body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request's JSON object (chat histories are larger than other bodies)."""
    return await json_object(request, allowed, max_bytes=BODY_MAX_BYTES)


def _text(data: dict[str, Any], name: str, max_chars: int) -> str:
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise p.ParamError(name, "must be a non-empty string")
    if len(value) > max_chars:
        raise p.ParamError(name, f"longer than {max_chars} characters")
    return value


def llm_client(request: Request) -> LlmClient | None:
    client: LlmClient | None = getattr(request.app.state, "llm", None)
    return client


def model_error(exc: Exception) -> Response:
    """502 when the model failed, 504 when it did not answer in time."""
    if isinstance(exc, LlmTimeoutError):
        return error_response(504, "model_timeout", str(exc))
    return error_response(502, "model_error", str(exc))


async def nlq(request: Request) -> Response:
    """Answer {"question"} with SQL the model writes, or run {"sql"}; both through the guard."""
    data = await json_body(request, frozenset({"question", "sql"}))
    if ("question" in data) == ("sql" in data):
        raise p.ParamError("body", "give exactly one of question or sql")
    rt = runtime(request)
    settings: Settings = request.app.state.settings
    caps, scope = caps_of(settings.llm), rt.scope(request)
    try:
        if "sql" in data:
            answer = await run_sql(rt.warehouse, _text(data, "sql", MAX_SQL_CHARS), scope, caps)
        else:
            question = _text(data, "question", MAX_QUESTION_CHARS)
            answer = await answer_question(rt.warehouse, llm_client(request), question, scope, caps)
    except QueryRefusedError as exc:
        return error_response(400, "query_refused", str(exc), rule=exc.rule)
    except NoModelError as exc:
        return error_response(400, "no_model", str(exc), parameter="question")
    except LlmError as exc:
        return model_error(exc)
    return JsonResponse(answer.to_json())


def _messages(data: dict[str, Any]) -> list[dict[str, str]]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise p.ParamError("messages", f"must be a list of 1-{MAX_MESSAGES} messages")
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise p.ParamError(f"messages[{index}]", "must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise p.ParamError(f"messages[{index}].role", f"must be one of {', '.join(sorted(CHAT_ROLES))}")
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_MESSAGE_CHARS:
            raise p.ParamError(f"messages[{index}].content", f"must be a string of 1-{MAX_MESSAGE_CHARS} characters")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "user":
        raise p.ParamError("messages", "the last message must be the user's")
    return out


async def chat(request: Request) -> Response:
    """One assistant turn over the conversation, calling tools in the caller's scope."""
    messages = _messages(await json_body(request, frozenset({"messages"})))
    client = llm_client(request)
    if client is None:
        return error_response(400, "no_model", "the assistant needs a language model: set OLLYSTACK_LLM_MODEL",
                              parameter="messages")
    rt = runtime(request)
    settings: Settings = request.app.state.settings
    registry: ToolRegistry = request.app.state.chat_tools
    ctx = ChatContext(rt, rt.scope(request), caps_of(settings.llm))
    try:
        answer = await run_chat(client, registry, messages, ctx, max_turns=settings.llm.chat_max_turns,
                                max_tool_calls=settings.llm.chat_max_tool_calls)
    except LlmError as exc:
        return model_error(exc)
    return JsonResponse(answer)


ROUTES = [
    Route("/api/v1/nlq", nlq, methods=["POST"]),
    Route("/api/v1/ai/nlq", nlq, methods=["POST"]),
    Route("/api/v1/chat", chat, methods=["POST"]),
]
