"""`ollystack correlate <id>` through api.cli.correlate_main: JSON, table, exit codes."""
from __future__ import annotations

import io

import orjson
from test_api import G_A, X, insert_scenario

from api.cli import correlate_main
from core.settings import Settings
from sinks.warehouse import Warehouse


def run(warehouse: Warehouse, cid: str, as_json: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = correlate_main(Settings(), cid, as_json, warehouse=warehouse, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_is_the_api_context(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    code, out, _ = run(warehouse, X, True)
    context = orjson.loads(out)
    assert code == 0 and context["correlation_id"] == X and context["summary"]["spans"] == 6
    assert G_A not in out


def test_the_table_shows_summary_timeline_and_errors(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    warehouse.insert("otel_logs", {"Timestamp": [1], "TraceId": [""], "SeverityNumber": [9], "ServiceName": ["evil"],
                                   "Body": ["\x1b[31mred\x1b[0m"], "CorrelationId": [X]})
    code, out, _ = run(warehouse, X, False)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"Correlation ID  {X}"
    assert "Spans 6 | Logs 4 | Metrics 1 | Errors 2 | Traces 2 | Services 4" in lines[2]
    assert lines[4].split() == ["TIME", "TYPE", "SERVICE", "DURATION", "LEVEL", "DESCRIPTION"]
    assert any("POST /checkout" in line and "500.000 ms" in line for line in lines)
    assert "ERRORS" in lines and "\x1b" not in out and "\\x1b[31mred" in out


def test_exit_codes_for_unknown_and_invalid_ids(warehouse: Warehouse) -> None:
    assert run(warehouse, "nobody-1", False)[0] == 1
    code, out, err = run(warehouse, "x' OR 1=1 --", True)
    assert (code, out) == (2, "") and "sql_injection" in err
