"""`ollystack rca <correlation-id>` (or ``--trace-id``) and `ollystack rca --service S --since 15m`
(or ``--alert``): the request or incident analysis in the terminal, as tables or as the API's JSON."""
from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import Any, TextIO

import orjson

from agents.score.config import ScoreConfig
from api import params as p
from api.cli import safe_text
from api.params import Limits
from api.queries.correlation import CorrelationRows, load_correlation
from api.queries.scope import QueryScope
from api.rca.analyses import AnalysisContext, findings
from api.rca.request import summary_line
from api.responses import NotFoundError
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


_SINCE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CANDIDATE_COLUMNS = (("#", 3), ("SERVICE", 24), ("SCORE", 8), ("KIND", 8), ("ORIGIN ERRORS", 22),
                      ("SELF MS/REQ", 22), ("TOP ANOMALY", 0))


def since_s(text: str) -> float:
    """'15m', '90s', '2h', '1d' as seconds; ParamError otherwise."""
    found = _SINCE.fullmatch(text.strip())
    if found is None or float(found.group(1)) <= 0:
        raise p.ParamError("since", "must be a positive duration such as 90s, 15m, 2h or 1d")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def render_incident(analysis: dict[str, Any]) -> str:
    """The incident analysis as a header, the root cause and the ranked candidates."""
    window, cause = analysis["window"], analysis["root_cause"]
    lines = [f"Incident     {window['start']} .. {window['end']}"
             + (f"  service {safe_text(window['service'])}" if window["service"] else "")
             + (f"  alert {window['alert_fingerprint']}" if window["alert_fingerprint"] else ""),
             "Root cause   " + (f"{cause['kind']} in {safe_text(cause['service'])} "
                               f"{safe_text(cause['operation'] or '')} (confidence {cause['confidence']:.2f})"
                               if cause else "none found in the window"),
             f"Method       {analysis['method']}", "", "CANDIDATES", _header(_CANDIDATE_COLUMNS)]
    for rank, c in enumerate(analysis["candidates"], 1):
        t, windows = c["evidence"]["traces"], c["evidence"]["anomaly_windows"]
        base_err, base_self = t["baseline_origin_error_rate"], t["baseline_self_ms_per_request"]
        top = windows[0] if windows else None
        lines.append(_row((rank, c["service"], f"{c['score']:.3f}", c["kind"],
                           f"{t['origin_error_rate']:.1%}" + (f" (was {base_err:.1%})" if base_err is not None else ""),
                           f"{t['self_ms_per_request']:.1f}" + (f" (was {base_self:.1f})" if base_self is not None
                                                                  else ""),
                           f"{top['feature']} {top['score']:.1f} at {top['window_start']}" if top else "-"),
                          _CANDIDATE_COLUMNS))
    return "\n".join(lines)


def rca_body(correlation_id: str | None, trace_id: str | None, service: str | None, since: str | None,
             alert: str | None, now_ns: int) -> dict[str, Any]:
    """The analysis body the options name: a request (an ID or a trace) or an incident (a
    service and/or a window back from now, or an alert); ParamError otherwise."""
    incident = service is not None or since is not None or alert is not None
    if correlation_id is not None or trace_id is not None:
        if correlation_id is not None and trace_id is not None:
            raise p.ParamError("rca", "give a correlation ID or --trace-id (one of them)")
        if incident:
            raise p.ParamError("rca", "a request (an ID or --trace-id) or an incident (--service, --since, --alert), "
                                      "not both")
        return {"correlation_id": correlation_id} if correlation_id is not None else {"trace_id": trace_id}
    if not incident:
        raise p.ParamError("rca", "give a correlation ID or --trace-id (one of them), or --service/--since/--alert "
                                  "for an incident")
    body: dict[str, Any] = {"service": service} if service is not None else {}
    if alert is not None:
        if since is not None:
            raise p.ParamError("since", "give --alert or --since, not both")
        return {**body, "alert_fingerprint": alert}
    start_ms = (now_ns - round(since_s(since or DEFAULT_SINCE) * p.NS_PER_S)) // p.NS_PER_MS
    return {**body, "start": str(start_ms), "end": str(now_ns // p.NS_PER_MS)}


DEFAULT_SINCE = "15m"


def rca_main(settings: Settings, correlation_id: str | None, trace_id: str | None, as_json: bool, *,
             service: str | None = None, since: str | None = None, alert: str | None = None,
             warehouse: Warehouse | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the analysis of a request (``correlation_id`` or ``trace_id``) or of an
    incident (``service``, ``since`` back from now, or an ``alert`` fingerprint): 0 found,
    1 nothing stored, 2 invalid input.

    Opens the configured warehouse unless one is given (and closes only one it opened).
    Reads every tenant's rows: this is the operator's view. Raises WarehouseError when the
    warehouse fails."""
    out = out or sys.stdout
    err = err or sys.stderr
    now_ns = time.time_ns()
    try:
        body = rca_body(correlation_id, trace_id, service, since, alert, now_ns)
    except p.ParamError as exc:
        print(safe_text(str(exc).removeprefix("rca: ")), file=err)
        return 2
    opened = None
    if warehouse is None:
        from sinks.backend import open_warehouse

        warehouse = opened = open_warehouse(settings.clickhouse, settings.data_dir)
    scope, limits = QueryScope(warehouse.database), Limits()

    async def correlation(scope: QueryScope, cid: str) -> CorrelationRows:
        return await load_correlation(warehouse, scope, cid, limits)

    ctx = AnalysisContext(warehouse, scope, limits, now_ns, ScoreConfig.from_settings(settings), correlation)
    try:
        analysis = asyncio.run(findings(ctx, body))
    except p.ParamError as exc:
        print(safe_text(str(exc)), file=err)
        return 2
    except NotFoundError as exc:
        print(safe_text(str(exc)), file=err)
        return 1
    finally:
        if opened is not None:
            opened.close()
    if as_json:
        out.write(orjson.dumps(analysis, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write((render_analysis(analysis) if analysis["analysis"] == "request" else render_incident(analysis))
                  + "\n")
    return 0
