"""NLQ and chat on real chDB rows: guarded SQL runs and answers rows of the caller's tenant
alone; a model (the test's OpenAI-compatible server, over real HTTP) writes SQL and calls tools."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from test_api import T0, columns, insert_scenario, make_client, span

from api.app import create_app
from core.settings import ApiSettings, LlmSettings, Settings
from sinks.warehouse import Warehouse
from tests.support.openai_server import OpenAiServer, completion, tool_call

KEYS = {"acme-key": "acme", "globex-key": "globex", "ops-key": "ops:admin"}
API_KEY = "sk-nlq-hunter2"
BY_SERVICE = "SELECT ServiceName AS service, count() AS spans FROM otel_traces GROUP BY service ORDER BY service"
ACME_SERVICES = ["cart-service", "frontend", "inventory-service", "payment-service"]


def insert_tenants(wh: Warehouse) -> None:
    """The scenario (tenant acme) and one trace of tenant globex."""
    insert_scenario(wh)
    wh.insert("otel_traces", columns([
        span("f" * 32, "f1" * 8, "", 100, 30, "globex-billing", "POST /invoice", "Server", "globex-1",
             "Error", tenant="globex", message="globex secret"),
    ]))


def client_for(wh: Warehouse, llm: LlmSettings | None = None) -> httpx.AsyncClient:
    if llm is None:
        return make_client(wh, KEYS)
    settings = Settings(api=ApiSettings(keys=KEYS), llm=llm)
    app = create_app(settings, wh, clock_ns=lambda: T0 + 2 * 3600 * 1_000_000_000)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str = "acme-key",
               expect: int = 200) -> Any:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == expect, response.text
    return response.json()


@pytest.mark.asyncio
async def test_guarded_sql_runs_on_chdb_and_a_tenant_sees_only_its_rows(warehouse: Warehouse) -> None:
    insert_tenants(warehouse)
    async with client_for(warehouse) as client:
        acme = await post(client, "/api/v1/nlq", {"sql": BY_SERVICE})
        assert acme["columns"] == ["service", "spans"]
        assert [r["service"] for r in acme["rows"]] == ACME_SERVICES
        assert acme["limit_added"] is True and "LIMIT 1000" in acme["executed_sql"]
        globex = await post(client, "/api/v1/ai/nlq", {"sql": BY_SERVICE}, key="globex-key")
        assert globex["rows"] == [{"service": "globex-billing", "spans": 1}]
        every = await post(client, "/api/v1/nlq", {"sql": BY_SERVICE}, key="ops-key")
        assert [r["service"] for r in every["rows"]] == sorted([*ACME_SERVICES, "globex-billing"])
        # Another tenant's rows are out of reach: asked for by content they are not there, and
        # naming a tenant is refused.
        sneaky = ("SELECT t.ServiceName AS s, t.StatusMessage AS m FROM otel_traces AS t WHERE "
                  "t.ServiceName = 'globex-billing' OR 1 = 1 UNION ALL SELECT ServiceName, Body FROM otel_logs")
        rows = (await post(client, "/api/v1/nlq", {"sql": sneaky}))["rows"]
        assert rows and "globex" not in json.dumps(rows)
        named = "SELECT Body FROM otel_logs WHERE ResourceAttributes['tenant.id'] = 'globex'"
        assert (await post(client, "/api/v1/nlq", {"sql": named}, expect=400))["rule"] == "tenant"


@pytest.mark.asyncio
async def test_joins_nested_columns_and_final_run_on_chdb(warehouse: Warehouse) -> None:
    insert_tenants(warehouse)
    sql = ("SELECT t.SpanId AS span, l.Body AS body, t.Events.Name AS events FROM otel_traces AS t FINAL "
           "JOIN otel_logs AS l ON l.SpanId = t.SpanId WHERE l.SeverityNumber >= 17 ORDER BY span LIMIT 10")
    async with client_for(warehouse) as client:
        answer = await post(client, "/api/v1/nlq", {"sql": sql})
    assert answer["rows"] == [{"span": "a3" * 8, "body": "card declined for order 7f3a9c", "events": ["start"]}]
    assert answer["limit_added"] is False


@pytest.mark.asyncio
@pytest.mark.parametrize(("sql", "rule"), [
    ("SELECT * FROM system.tables", "system_table"),
    ("SELECT ServiceName FROM otel_traces SETTINGS readonly = 0", "settings"),
    ("SELECT ServiceName FROM otel_traces; DROP TABLE otel_traces", "one_statement"),
    ("SELECT ServiceName FROM otel_traces LIMIT 1000000", "limit"),
    ("SELECT toDate('not a date') FROM otel_traces", "execution"),
], ids=["system-table", "settings", "stacked", "huge-limit", "fails-in-the-engine"])
async def test_a_refused_query_answers_400_naming_the_rule(warehouse: Warehouse, sql: str, rule: str) -> None:
    insert_tenants(warehouse)
    async with client_for(warehouse) as client:
        refused = await post(client, "/api/v1/nlq", {"sql": sql}, expect=400)
    assert refused["error"] == "query_refused" and refused["rule"] == rule
    assert rule in refused["message"]


@pytest.mark.asyncio
async def test_a_question_without_a_model_answers_400_naming_the_setting(warehouse: Warehouse) -> None:
    async with client_for(warehouse) as client:
        answer = await post(client, "/api/v1/nlq", {"question": "which service fails most?"}, expect=400)
        assert answer["error"] == "no_model" and "OLLYSTACK_LLM_MODEL" in answer["message"]
        chat = await post(client, "/api/v1/chat", {"messages": [{"role": "user", "content": "hi"}]}, expect=400)
        assert "OLLYSTACK_LLM_MODEL" in chat["message"]
        both = await post(client, "/api/v1/nlq", {"question": "x", "sql": "SELECT 1"}, expect=400)
        assert both["parameter"] == "body"


@pytest.fixture
def model() -> Iterator[OpenAiServer]:
    """The test's model server; each test sets ``respond``."""
    with OpenAiServer(lambda body: completion("{}")) as server:
        yield server


def llm_settings(server: OpenAiServer) -> LlmSettings:
    return LlmSettings(model="openai/fake-model", api_base=server.api_base, api_key=SecretStr(API_KEY),
                       timeout_s=60)


@pytest.mark.asyncio
async def test_the_model_writes_the_sql_the_guard_runs_for_the_callers_tenant(
        warehouse: Warehouse, model: OpenAiServer, caplog: pytest.LogCaptureFixture) -> None:
    insert_tenants(warehouse)
    model.respond = lambda body: completion(json.dumps({
        "sql": "SELECT ServiceName AS service, count() AS errors FROM otel_traces WHERE StatusCode = 'Error' "
               "GROUP BY service ORDER BY errors DESC", "explanation": "failed spans per service"}))
    async with client_for(warehouse, llm_settings(model)) as client:
        acme = await post(client, "/api/v1/nlq", {"question": "Which service fails most?"})
        globex = await post(client, "/api/v1/nlq", {"question": "Which service fails most?"}, key="globex-key")
        model.respond = lambda body: completion(json.dumps({"sql": "SELECT * FROM system.users"}))
        refused = await post(client, "/api/v1/nlq", {"question": "Who are the users?"}, expect=400)
    assert acme["rows"] == [{"service": "payment-service", "errors": 1}]
    assert acme["explanation"] == "failed spans per service" and acme["sql"].startswith("SELECT ServiceName")
    assert globex["rows"] == [{"service": "globex-billing", "errors": 1}]
    assert refused["rule"] == "system_table"
    prompt = model.requests[0].text
    assert "Which service fails most?" in prompt and "otel_traces (Timestamp, TraceId" in prompt
    assert "ollystack_trace_links" not in prompt  # only the allowlist is shown
    assert model.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    for shown in (json.dumps([acme, globex, refused]), caplog.text):
        assert API_KEY not in shown


@pytest.mark.asyncio
async def test_chat_calls_a_tool_and_answers_from_its_result(warehouse: Warehouse, model: OpenAiServer) -> None:
    insert_tenants(warehouse)

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
        if not tool_messages:
            return completion(tool_calls=[
                tool_call("run_sql", {"sql": BY_SERVICE}, "call_sql"),
                tool_call("lookup_correlation", {"correlation_id": "order-7f3a9c"}, "call_cid"),
                tool_call("analyze_request", {"correlation_id": "order-7f3a9c"}, "call_rca")])
        return completion("payment-service failed: " + str(len(tool_messages)) + " tool results")

    model.respond = respond
    messages = [{"role": "user", "content": "What failed in order-7f3a9c?"}]
    async with client_for(warehouse, llm_settings(model)) as client:
        answer = await post(client, "/api/v1/chat", {"messages": messages})
        globex = await post(client, "/api/v1/chat", {"messages": messages}, key="globex-key")
    assert answer["message"] == {"role": "assistant", "content": "payment-service failed: 3 tool results"}
    assert [(c["name"], c["error"]) for c in answer["tool_calls"]] == [
        ("run_sql", None), ("lookup_correlation", None), ("analyze_request", None)]
    assert answer["turns"] == 2 and answer["stopped"] is None
    first, second = model.requests[0].body, model.requests[1].body
    assert {t["function"]["name"] for t in first["tools"]} == {
        "run_sql", "lookup_correlation", "analyze_request", "analyze_incident", "causal_chain"}
    results = {m["tool_call_id"]: m["content"] for m in second["messages"] if m["role"] == "tool"}
    assert all(s in results["call_sql"] for s in ACME_SERVICES) and "globex" not in results["call_sql"]
    assert "payment-service" in results["call_cid"] and '"found":true' in results["call_cid"]
    assert '"root_cause":{' in results["call_rca"] and "critical_path" in results["call_rca"]
    # Globex's run of the same tools sees its rows alone, and not acme's correlation ID.
    globex_results = [m["content"] for m in model.requests[3].body["messages"] if m["role"] == "tool"]
    assert "globex-billing" in globex_results[0] and "frontend" not in globex_results[0]
    assert '"found":false' in globex_results[1]
    assert "no spans, logs or metrics are stored" in globex_results[2]  # a tool error, not acme's analysis
    assert globex["turns"] == 2 and globex["tool_calls"][2]["error"]


@pytest.mark.asyncio
async def test_chat_stops_at_its_turn_bound(warehouse: Warehouse, model: OpenAiServer) -> None:
    model.respond = lambda body: completion(tool_calls=[tool_call("run_sql", {"sql": "SELECT * FROM system.one"})])
    settings = llm_settings(model).model_copy(update={"chat_max_turns": 3})
    async with client_for(warehouse, settings) as client:
        answer = await post(client, "/api/v1/chat", {"messages": [{"role": "user", "content": "loop"}]})
    assert answer["stopped"] == "max_turns" and answer["turns"] == 3
    assert len(model.requests) == 3
    assert all("system_table" in (c["error"] or "") for c in answer["tool_calls"])


def test_every_allowlisted_column_exists_in_the_migrated_tables(warehouse: Warehouse) -> None:
    from api.nlq.schema import ALLOWED_TABLES

    for table in ALLOWED_TABLES.values():
        rows = warehouse.query("SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                               {"db": warehouse.database, "t": table.name})
        assert set(table.columns) <= {r["name"] for r in rows}, table.name


@pytest.mark.asyncio
@pytest.mark.parametrize(("sql", "caps", "rule"), [
    ("SELECT length(arrayMap(x -> toString(x), range(20000000))) AS n FROM otel_traces LIMIT 1",
     {"nlq_max_memory_bytes": 16 * 1024 * 1024}, "max_memory_usage"),
    ("SELECT sum(x) AS s FROM otel_traces ARRAY JOIN range(30000000) AS x",
     {"nlq_max_execution_s": 0.2, "nlq_max_memory_bytes": 8 * 1024 ** 3}, "max_execution_time"),
], ids=["memory", "time"])
async def test_a_query_over_a_cap_answers_400_naming_it(warehouse: Warehouse, sql: str, caps: dict[str, Any],
                                                        rule: str) -> None:
    insert_tenants(warehouse)
    async with client_for(warehouse, LlmSettings(**caps)) as client:
        refused = await post(client, "/api/v1/nlq", {"sql": sql}, expect=400)
    assert refused["rule"] == rule, refused


@pytest.mark.asyncio
async def test_a_model_that_is_down_or_slow_answers_502_or_504(
        warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = LlmSettings(model="openai/fake-model", api_base=f"http://127.0.0.1:{port}/v1", api_key=SecretStr(API_KEY),
                       timeout_s=10)
    async with client_for(warehouse, down) as client:
        failed = await post(client, "/api/v1/nlq", {"question": "errors?"}, expect=502)
    with OpenAiServer(lambda body: completion("{}"), delay_s=4) as slow:
        settings = LlmSettings(model="openai/fake-model", api_base=slow.api_base, timeout_s=1)
        async with client_for(warehouse, settings) as client:
            late = await post(client, "/api/v1/chat", {"messages": [{"role": "user", "content": "hi"}]}, expect=504)
    assert failed["error"] == "model_error" and late["error"] == "model_timeout"
    assert API_KEY not in json.dumps(failed) and API_KEY not in caplog.text
