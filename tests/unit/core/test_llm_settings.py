"""The llm settings section: environment names, constraints, and a key that is never shown."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_llm_settings_come_from_the_environment() -> None:
    s = load_settings(environ={"OLLYSTACK_LLM_MODEL": "ollama_chat/llama3.1",
                               "OLLYSTACK_LLM_API_BASE": "http://localhost:11434",
                               "OLLYSTACK_LLM_API_KEY": "sk-hunter2", "OLLYSTACK_LLM_TIMEOUT_S": "12.5",
                               "OLLYSTACK_LLM_MAX_PROMPT_TOKENS": "4000", "OLLYSTACK_LLM_MAX_COMPLETION_TOKENS": "300",
                               "OLLYSTACK_LLM_NLQ_MAX_ROWS": "50"})
    assert (s.llm.model, s.llm.api_base, s.llm.timeout_s) == ("ollama_chat/llama3.1", "http://localhost:11434", 12.5)
    assert (s.llm.max_prompt_tokens, s.llm.max_completion_tokens, s.llm.nlq_max_rows) == (4000, 300, 50)
    assert s.llm.api_key.get_secret_value() == "sk-hunter2"
    for shown in (str(s.redacted()), repr(s), str(s)):
        assert "hunter2" not in shown
    assert s.redacted()["llm"]["api_key"] == "**********"


def test_no_model_by_default() -> None:
    s = load_settings(environ={})
    assert s.llm.model == "" and s.llm.api_key.get_secret_value() == ""


@pytest.mark.parametrize(("environ", "expected"), [
    ({"OLLYSTACK_LLM_TIMEOUT_S": "0"}, "OLLYSTACK_LLM_TIMEOUT_S='0': Input should be greater than 0"),
    ({"OLLYSTACK_LLM_API_BASE": "localhost:11434"}, "OLLYSTACK_LLM_API_BASE='localhost:11434'"),
    ({"OLLYSTACK_LLM_MAX_PROMPT_TOKENS": "10"}, "OLLYSTACK_LLM_MAX_PROMPT_TOKENS='10'"),
    ({"OLLYSTACK_LLM_NLQ_MAX_ROWS": "0"}, "OLLYSTACK_LLM_NLQ_MAX_ROWS='0'"),
    ({"OLLYSTACK_LLM_API_KEY": "x" * 5, "OLLYSTACK_LLM_MODLE": "x"}, "OLLYSTACK_LLM_MODLE: unknown setting"),
], ids=["timeout", "api-base-without-scheme", "prompt-budget", "nlq-rows", "typo"])
def test_bad_llm_settings_are_named(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert expected in str(err.value)


def test_a_bad_key_value_is_never_shown() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"OLLYSTACK_LLM_API_KEY": ["sk-hunter2"]})  # type: ignore[dict-item]
    assert "hunter2" not in str(err.value) and "<secret>" in str(err.value)
