"""/api/v1/correlations: recent, failing or slow correlation IDs, each with a link to its lookup."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import params as p
from api.presentation.rows import iso_ns, ms
from api.queries.correlation_index import ORDER_BY, CorrelationListing, Sort, list_correlations
from api.responses import JsonResponse
from api.runtime import runtime
from core.types import Row

CORRELATION_PARAMS = frozenset({"sort", "service", "has_errors", "start", "end", "limit", "offset"})
BOOLEANS = {"true": True, "false": False}
SORTS: dict[str, Sort] = {name: name for name in ORDER_BY}


def correlation_json(row: Row) -> Row:
    """One index entry as the API shows it."""
    cid, first, last = row["CorrelationId"], int(row["first_ns"]), int(row["last_ns"])
    error_spans, error_logs = int(row["error_spans"]), int(row["error_logs"])
    return {
        "correlation_id": cid,
        "first_seen": iso_ns(first),
        "last_seen": iso_ns(last),
        "duration_ms": ms(last - first),
        "services": row["services"],
        "trace_count": int(row["traces"]),
        "span_count": int(row["spans"]),
        "log_count": int(row["logs"]),
        "error_count": error_spans + error_logs,
        "error_spans": error_spans,
        "error_logs": error_logs,
        "max_span_duration_ms": ms(int(row["slowest"])),
        # IDs may hold '/', '+', '=' ...: one encoded path segment, as the lookup route decodes it.
        "link": "/api/v1/correlate/" + quote(cid, safe=""),
    }


async def get_correlations(request: Request) -> Response:
    """Correlation IDs active in the time range, newest first, or with the most errors
    (``sort=failing``) or the slowest span (``sort=slow``) first; ties go to the newest.
    ``has_errors=true`` keeps only IDs with an error span or log (``false``: only those without)."""
    q = p.query_params(request, CORRELATION_PARAMS)
    rt = runtime(request)
    time = p.time_range(q, rt.limits, rt.clock_ns())
    listing = CorrelationListing(
        time=time,
        sort=p.choice(q["sort"], "sort", SORTS) if "sort" in q else "recent",
        service=p.name_value(q["service"], "service") if "service" in q else None,
        has_errors=p.choice(q["has_errors"], "has_errors", BOOLEANS) if "has_errors" in q else None,
    )
    page = p.page(q, rt.limits)
    rows = await list_correlations(rt.warehouse, rt.scope(request), listing, page)
    more = len(rows) > page.limit
    return JsonResponse({
        "correlations": [correlation_json(row) for row in rows[: page.limit]],
        "sort": listing.sort,
        "time_range": {"start": iso_ns(time.start_ns), "end": iso_ns(time.end_ns)},
        "limit": page.limit, "offset": page.offset,
        "next_offset": page.offset + page.limit if more else None,
    })


ROUTES = [Route("/api/v1/correlations", get_correlations, methods=["GET"])]
