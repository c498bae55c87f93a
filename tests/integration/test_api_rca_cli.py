"""`ollystack rca` through api.rca_cli.rca_main: JSON, tables, escaping, exit codes."""
from __future__ import annotations

import io
import time
from pathlib import Path

import orjson
import pytest
from test_api import T0, TRACE_A, X, columns, insert_scenario, span
from test_cli import ollystack_env, run_cli

from api.rca_cli import rca_main
from core.settings import Settings
from pipeline.cli import build_parser
from sinks.warehouse import Warehouse


def run(warehouse: Warehouse, cid: str | None, trace_id: str | None = None,
        as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = rca_main(Settings(), cid, trace_id, as_json, warehouse=warehouse, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_is_the_api_analysis(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    code, out, _ = run(warehouse, X, as_json=True)
    analysis = orjson.loads(out)
    assert code == 0 and analysis["root_cause"]["service"] == "payment-service"
    code, out, _ = run(warehouse, None, TRACE_A, as_json=True)
    assert code == 0 and orjson.loads(out)["trace_ids"] == [TRACE_A]


def test_the_tables_show_the_findings_with_stored_text_escaped(warehouse: Warehouse) -> None:
    insert_scenario(warehouse)
    warehouse.insert("otel_traces", {
        "Timestamp": [1], "TraceId": ["c" * 31 + "9"], "SpanId": ["e" * 16], "ParentSpanId": [""],
        "SpanName": ["\x1b[31mred\x1b[0m"], "ServiceName": ["evil"], "Duration": [5], "StatusCode": ["Error"],
        "StatusMessage": ["\x1b]0;owned\x07"], "CorrelationId": ["evil-1"]})
    code, out, _ = run(warehouse, X)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"Request      {X}  (2 traces, critical path 580.000 ms")
    assert lines[1] == "Root cause   error in payment-service POST /charge (confidence 1.00)"
    assert "CRITICAL PATH" in lines and "ERROR ORIGIN" in lines and "FINDINGS" in lines
    assert any(line.startswith("payment-service") and "210.000 ms" in line and "36.2%" in line for line in lines)
    assert "  message: card declined" in lines
    code, out, _ = run(warehouse, "evil-1")
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\\x1b[31mred" in out


@pytest.mark.parametrize(("cid", "trace_id", "code", "words"), [
    (None, None, 2, "one of them"),
    ("a", "a" * 32, 2, "one of them"),
    ("<script>", None, 2, "not a valid correlation ID"),
    (None, "xyz", 2, "32 hex digits"),
    ("order-unknown", None, 1, "no spans"),
    (None, "f" * 32, 1, "no spans"),
], ids=["nothing", "both", "hostile ID", "bad trace ID", "unknown ID", "unknown trace"])
def test_exit_codes(warehouse: Warehouse, cid: str | None, trace_id: str | None, code: int, words: str) -> None:
    got, out, err = run(warehouse, cid, trace_id)
    assert (got, out) == (code, "") and words in err


def test_the_command_line_takes_an_id_or_a_trace() -> None:
    args = build_parser().parse_args(["rca", "order-1", "--json"])
    assert (args.correlation_id, args.trace_id, args.json) == ("order-1", None, True)
    args = build_parser().parse_args(["rca", "--trace-id", "a" * 32])
    assert (args.correlation_id, args.trace_id, args.json) == (None, "a" * 32, False)


@pytest.mark.parametrize(("args", "message"), [
    (["rca"], "one of them"), (["rca", "--trace-id", "xyz"], "32 hex digits"),
    (["rca", "<script>", "--json"], "not a valid correlation ID"),
], ids=["nothing", "bad-trace-id", "hostile-id"])
def test_the_command_refuses_bad_input_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(*args, env=ollystack_env(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr and "Traceback" not in done.stderr


def store_recent_failures(warehouse: Warehouse) -> None:
    """Five requests a minute ago, frontend -> checkout -> payment, each failing in payment."""
    at_ms = (time.time_ns() - 60 * 1_000_000_000 - T0) / 1e6
    rows = []
    for i in range(5):
        trace = f"{i:032x}"
        rows += [span(trace, f"{i:015x}a", "", at_ms + i, 50, "frontend", "GET /", "Server", f"r-{i}", "Error"),
                 span(trace, f"{i:015x}b", f"{i:015x}a", at_ms + i + 1, 40, "checkout", "POST /buy", "Server",
                      f"r-{i}", "Error"),
                 span(trace, f"{i:015x}c", f"{i:015x}b", at_ms + i + 2, 30, "payment", "POST /charge", "Server",
                      f"r-{i}", "Error", message="card processor down")]
    warehouse.insert("otel_traces", columns(rows))


def test_an_incident_of_the_last_minutes_ranks_the_service_where_errors_start(warehouse: Warehouse) -> None:
    store_recent_failures(warehouse)
    out, err = io.StringIO(), io.StringIO()
    assert rca_main(Settings(), None, None, False, since="10m", warehouse=warehouse, out=out, err=err) == 0, err
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("Root cause   error in payment POST /charge (confidence")
    assert lines[lines.index("CANDIDATES") + 2].startswith("1    payment ")
    out = io.StringIO()
    assert rca_main(Settings(), None, None, True, service="frontend", since="10m", warehouse=warehouse, out=out) == 0
    analysis = orjson.loads(out.getvalue())
    assert analysis["analysis"] == "incident" and analysis["root_cause"]["service"] == "payment"
    assert analysis["window"]["service"] == "frontend"


@pytest.mark.parametrize(("options", "code", "words"), [
    ({"since": "5x"}, 2, "90s, 15m, 2h or 1d"),
    ({"since": "0m"}, 2, "positive duration"),
    ({"alert": "xyz"}, 2, "16 hex digits"),
    ({"alert": "0123456789abcdef"}, 1, "no alert 0123456789abcdef"),
    ({"alert": "0123456789abcdef", "since": "1h"}, 2, "not both"),
    ({"service": "nothing-here", "since": "10m"}, 1, "nothing-here has no spans"),
], ids=["bad-since", "zero-since", "bad-alert", "unknown-alert", "alert-and-since", "unknown-service"])
def test_incident_options_are_checked(warehouse: Warehouse, options: dict[str, str], code: int, words: str) -> None:
    store_recent_failures(warehouse)
    out, err = io.StringIO(), io.StringIO()
    assert rca_main(Settings(), None, None, False, warehouse=warehouse, out=out, err=err, **options) == code
    assert out.getvalue() == "" and words in err.getvalue()


def test_a_request_and_an_incident_are_not_asked_at_once(warehouse: Warehouse) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert rca_main(Settings(), X, None, False, service="frontend", warehouse=warehouse, out=out, err=err) == 2
    assert "not both" in err.getvalue()
    args = build_parser().parse_args(["rca", "--service", "checkout", "--since", "15m"])
    assert (args.correlation_id, args.service, args.since, args.alert) == (None, "checkout", "15m", None)
