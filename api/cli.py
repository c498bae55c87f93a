"""`ollystack correlate <id>`: the correlation context in the terminal, as a table or JSON."""
from __future__ import annotations

import asyncio
import re
import sys
from typing import Any, TextIO

import orjson

from agents.validation import validate_correlation_id
from api.params import Limits
from api.presentation.context import build_context
from api.queries.correlation import load_correlation
from api.queries.scope import QueryScope
from core.settings import Settings
from sinks.warehouse import Warehouse

# Stored text comes from clients: control characters (terminal escape sequences) are shown
# escaped instead of being sent to the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_COLUMNS = (("TIME", 30), ("TYPE", 6), ("SERVICE", 20), ("DURATION", 12), ("LEVEL", 5), ("DESCRIPTION", 0))


def safe_text(text: Any, width: int = 0) -> str:
    """Stored (client-sent) text fit for a terminal: control characters escaped, cut to
    ``width`` characters (0: no cut)."""
    shown = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))
    if width and len(shown) > width:
        shown = shown[: width - 1] + "…"
    return shown


def render_table(context: dict[str, Any]) -> str:
    """The context as a summary and a timeline table."""
    summary, span = context["summary"], context["time_range"]
    services = ", ".join(s["name"] for s in context["services"])
    lines = [
        f"Correlation ID  {safe_text(context['correlation_id'])}",
        f"Time range      {span['start']} .. {span['end']} ({summary['duration_ms']:.3f} ms)",
        f"Spans {summary['spans']} | Logs {summary['logs']} | Metrics {summary['metrics']} | "
        f"Errors {summary['errors']} | Traces {summary['traces']} | Services {summary['services']}: "
        f"{safe_text(services)}" + ("  (truncated: caps reached)" if summary["truncated"] else ""),
        "",
        "  ".join(name.ljust(width) for name, width in _COLUMNS).rstrip(),
    ]
    for item in context["timeline"]:
        duration = "" if item["duration_ms"] is None else f"{item['duration_ms']:.3f} ms"
        cells = (item["timestamp"], item["type"], item["service"], duration, item["level"], item["description"])
        lines.append("  ".join(
            safe_text(cell, width).ljust(width) if width else safe_text(cell, 120)
            for cell, (_, width) in zip(cells, _COLUMNS, strict=True)).rstrip())
    if context["errors"]:
        lines += ["", "ERRORS"]
        for error in context["errors"]:
            lines.append(f"  {error['timestamp']}  {safe_text(error['service'], 20)}  {error['type']}  "
                         f"{safe_text(error['description'], 60)}  {safe_text(error['message'], 80)}".rstrip())
    return "\n".join(lines)


def correlate_main(settings: Settings, correlation_id: str, as_json: bool, *,
                   warehouse: Warehouse | None = None, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:
    """Print everything stored under ``correlation_id``: 0 found, 1 nothing stored, 2 invalid ID.

    Opens the configured warehouse unless one is given (and closes only one it opened).
    Reads every tenant's rows: this is the operator's view. Raises WarehouseError when the
    warehouse fails."""
    out = out or sys.stdout
    err = err or sys.stderr
    verdict = validate_correlation_id(correlation_id)
    if not verdict.ok:
        print(f"correlation_id: not a valid correlation ID ({verdict.reason})", file=err)
        return 2
    opened = None
    if warehouse is None:
        from sinks.backend import open_warehouse

        warehouse = opened = open_warehouse(settings.clickhouse, settings.data_dir)
    try:
        rows = asyncio.run(load_correlation(warehouse, QueryScope(warehouse.database), correlation_id, Limits()))
    finally:
        if opened is not None:
            opened.close()
    if rows.empty:
        print(f"no spans, logs or metrics are stored under correlation ID {correlation_id!r}", file=err)
        return 1
    context = build_context(rows)
    if as_json:
        out.write(orjson.dumps(context, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(render_table(context) + "\n")
    return 0
