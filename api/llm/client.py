"""The language model client: chat completions through litellm, bounded in time and tokens.

litellm is imported on the first call, not with this module: importing it takes seconds,
and at import it would fetch its model price list from the network unless
LITELLM_LOCAL_MODEL_COST_MAP is set. That variable is set here before the import (the one
place a stage writes the environment: litellm reads it nowhere else), and litellm's
callbacks, telemetry and debug output are turned off, so the only request it sends is the
completion to the configured model."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import OllyStackError
from core.settings import LlmSettings

log = logging.getLogger(__name__)
# The client's own bound on a call, past litellm's timeout: connect plus read must both end.
_GRACE_S = 1.0
_litellm: Any = None


class LlmError(OllyStackError):
    """The model could not answer: unreachable, refused the call, or answered nothing usable.
    The message never holds the API key."""

    retriable = True


class LlmTimeoutError(LlmError):
    """The model did not answer within the configured timeout."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for."""

    id: str
    name: str
    arguments: str  # JSON text as the model wrote it


@dataclass(frozen=True)
class LlmReply:
    """The model's message: its text and the tools it asked to call."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    raw_message: dict[str, Any] = field(default_factory=dict)


def _load_litellm() -> Any:
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.turn_off_message_logging = True
        litellm.callbacks = []
        litellm.success_callback = []
        litellm.failure_callback = []
        litellm.drop_params = True  # a local server may not take every OpenAI parameter
        _litellm = litellm
    return _litellm


class LlmClient:
    """Calls ``settings.model``. One instance per app; safe to share between requests."""

    def __init__(self, settings: LlmSettings) -> None:
        if not settings.model:
            raise ValueError("LlmClient needs llm.model (OLLYSTACK_LLM_MODEL)")
        self.model = settings.model
        self.settings = settings
        self._key = settings.api_key.get_secret_value()

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced, for messages that may echo a request."""
        return text.replace(self._key, "**********") if self._key else text

    async def complete(self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] = (),
                       json_answer: bool = False) -> LlmReply:
        """One chat completion. Raises LlmTimeoutError past ``timeout_s``, LlmError for any
        other failure (unreachable, refused, an answer without a message)."""
        # The first import takes seconds: off the event loop.
        litellm = _litellm if _litellm is not None else await asyncio.to_thread(_load_litellm)
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": list(messages), "timeout": self.settings.timeout_s,
            "max_tokens": self.settings.max_completion_tokens, "num_retries": 0, "max_retries": 0,
            "temperature": 0,
        }
        if self.settings.api_base:
            kwargs["api_base"] = self.settings.api_base
        if self._key:
            kwargs["api_key"] = self._key
        elif self.settings.api_base:
            # A local OpenAI-compatible server takes any key, but the OpenAI client refuses to
            # send a request without one.
            kwargs["api_key"] = "no-key"
        if tools:
            kwargs["tools"] = list(tools)
            # litellm (1.106) routes every call with tools through its MCP bridge first, which
            # imports the optional `mcp` package and fails without it; our tools are plain
            # functions, so the bridge is skipped (litellm's own switch for it).
            kwargs["_skip_mcp_handler"] = True
        if json_answer:
            kwargs["response_format"] = {"type": "json_object"}
        late = f"the model {self.model} did not answer within {self.settings.timeout_s:g} s"
        try:
            response = await asyncio.wait_for(litellm.acompletion(**kwargs), self.settings.timeout_s + _GRACE_S)
        except TimeoutError:
            raise LlmTimeoutError(late) from None
        except Exception as exc:  # noqa: BLE001 - litellm raises many provider-specific types
            if "timeout" in type(exc).__name__.lower():
                raise LlmTimeoutError(late) from None
            # The message may echo the request; the key is taken out of it.
            detail = self.redact(f"{type(exc).__name__}: {str(exc)[:300]}")
            raise LlmError(f"the model {self.model} failed: {detail}") from None
        return _reply(response, self.model)


def _reply(response: Any, model: str) -> LlmReply:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        raise LlmError(f"the model {model} answered without a message") from None
    calls = tuple(
        ToolCall(str(c.id), str(c.function.name), str(c.function.arguments or "{}"))
        for c in (getattr(message, "tool_calls", None) or [])
    )
    raw = {"role": "assistant", "content": message.content or ""}
    if calls:
        raw["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                             for c in calls]
    return LlmReply(str(message.content or ""), calls, raw)


def client_from_settings(settings: LlmSettings) -> LlmClient | None:
    """The client of ``settings``, or None when no model is configured."""
    return LlmClient(settings) if settings.model else None
