"""`ollystack rca <correlation-id>` (or ``--trace-id``): the request analysis in the terminal,
as tables or as the API's JSON."""
from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

import orjson

from agents.validation import validate_correlation_id
from api import params as p
from api.cli import safe_text
from api.params import Limits
from api.queries.correlation import CorrelationRows, load_correlation
from api.queries.scope import QueryScope
from api.queries.trace_rows import load_trace
from api.rca.request import analyze_request, summary_line
from core.settings import Settings
from sinks.warehouse import Warehouse

_STEP_COLUMNS = (("SERVICE", 24), ("OPERATION", 32), ("SELF", 14), ("SHARE", 7), ("SPAN", 0))
_SLOW_COLUMNS = (("SERVICE", 24), ("OPERATION", 32), ("SELF", 14), ("DURATION", 14), ("PATH", 5), ("SPAN", 0))


def _row(cells: tuple[Any, ...], columns: tuple[tuple[str, int], ...]) -> str:
    return "  ".join(safe_text(cell, width).ljust(width) if width else safe_text(cell, 120)
                     for cell, (_, width) in zip(cells, columns, strict=True)).rstrip()


def _header(columns: tuple[tuple[str, int], ...]) -> str:
    return "  ".join(name.ljust(width) for name, width in columns).rstrip()


def render_analysis(analysis: dict[str, Any]) -> str:
    """The analysis as a header, the critical path, the error origin, the slowest self
    times and the findings."""
    lines = [
        f"Request      {safe_text(analysis['correlation_id'] or '-')}  ({len(analysis['trace_ids'])} traces, "
        f"critical path {analysis['critical_path_ms']:.3f} ms of {analysis['duration_ms']:.3f} ms)"
        + ("  (truncated: caps reached)" if analysis["truncated"] else ""),
        f"Root cause   {safe_text(summary_line(analysis))}",
        f"Services     {safe_text(', '.join(s['service'] for s in analysis['services']))}",
        "", "CRITICAL PATH", _header(_STEP_COLUMNS),
    ]
    for step in analysis["critical_path"]:
        lines.append(_row((step["service"], step["operation"], f"{step['self_time_ms']:.3f} ms",
                           f"{step['share']:.1%}", step["span_id"]), _STEP_COLUMNS))
    origin = analysis["error_origin"]
    lines += ["", "ERROR ORIGIN"]
    if origin is None:
        lines.append("  no span failed")
    else:
        lines += [f"  {safe_text(origin['service'])}  {safe_text(origin['operation'])}"
                  f"  span {safe_text(origin['span_id'])}  trace {safe_text(origin['trace_id'])}"
                  f"  ({origin['agreeing_traces']} of {origin['failing_traces']} failing traces)",
                  f"  message: {safe_text(origin['message'] or '-', 200)}"]
        for log in origin["logs"]:
            lines.append(f"  log {log['timestamp']}  {safe_text(log['level'], 5)}  {safe_text(log['body'], 120)}")
    lines += ["", "SLOWEST SELF TIME", _header(_SLOW_COLUMNS)]
    for span in analysis["slowest_self_time"]:
        lines.append(_row((span["service"], span["operation"], f"{span['self_time_ms']:.3f} ms",
                           f"{span['duration_ms']:.3f} ms", "yes" if span["on_critical_path"] else "",
                           span["span_id"]), _SLOW_COLUMNS))
    lines += ["", "FINDINGS"]
    for finding in analysis["findings"]:
        lines.append(f"  {finding['kind']:<8} {finding['confidence']:.2f}  {safe_text(finding['summary'], 160)}")
    return "\n".join(lines)


async def _load(warehouse: Warehouse, correlation_id: str, trace_id: str | None) -> CorrelationRows:
    scope = QueryScope(warehouse.database)
    if trace_id is not None:
        return await load_trace(warehouse, scope, trace_id, Limits())
    return await load_correlation(warehouse, scope, correlation_id, Limits())


def rca_main(settings: Settings, correlation_id: str | None, trace_id: str | None, as_json: bool, *,
             warehouse: Warehouse | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the request analysis of ``correlation_id`` or ``trace_id`` (exactly one): 0
    found, 1 nothing stored, 2 invalid input.

    Opens the configured warehouse unless one is given (and closes only one it opened).
    Reads every tenant's rows: this is the operator's view. Raises WarehouseError when the
    warehouse fails."""
    out = out or sys.stdout
    err = err or sys.stderr
    if (correlation_id is None) == (trace_id is None):
        print("rca: give a correlation ID or --trace-id (one of them)", file=err)
        return 2
    if correlation_id is not None:
        verdict = validate_correlation_id(correlation_id)
        if not verdict.ok:
            print(f"correlation_id: not a valid correlation ID ({safe_text(verdict.reason)})", file=err)
            return 2
    if trace_id is not None:
        try:
            trace_id = p.trace_id(trace_id)
        except p.ParamError as exc:
            print(str(exc), file=err)
            return 2
    opened = None
    if warehouse is None:
        from sinks.backend import open_warehouse

        warehouse = opened = open_warehouse(settings.clickhouse, settings.data_dir)
    try:
        rows = asyncio.run(_load(warehouse, correlation_id or "", trace_id))
    finally:
        if opened is not None:
            opened.close()
    if rows.empty:
        named = f"trace {trace_id}" if trace_id else f"correlation ID {correlation_id!r}"
        print(f"no spans, logs or metrics are stored under {safe_text(named)}", file=err)
        return 1
    analysis = analyze_request(rows)
    if as_json:
        out.write(orjson.dumps(analysis, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(render_analysis(analysis) + "\n")
    return 0
