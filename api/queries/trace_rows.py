"""One trace's spans, logs and exemplars, as a CorrelationRows (for request analysis by trace
ID: the correlation lookup would also bring the ID's other traces)."""
from __future__ import annotations

from api.params import Limits
from api.queries.correlation import CorrelationRows, best_links, capped, read_rows
from api.queries.scope import QueryScope
from api.queries.traces import trace_own_ids
from sinks.warehouse import Warehouse


async def load_trace(warehouse: Warehouse, scope: QueryScope, trace_id: str, limits: Limits) -> CorrelationRows:
    """The spans, logs and exemplars of ``trace_id`` visible in ``scope``, under the trace's
    best correlation ID (its best link, else the first ID stored on its rows, else '');
    capped like a correlation lookup (``truncated`` when a cap was reached). Raises
    WarehouseError (or WarehouseUnavailableError) from the warehouse."""
    links = await best_links(warehouse, scope, [trace_id])
    correlation_id = links.get(trace_id) or next(iter(await trace_own_ids(warehouse, scope, trace_id)), "")
    found = await read_rows(warehouse, scope, [trace_id], None, limits)
    return capped(correlation_id, [trace_id] if any(found.values()) else [], found, limits)
