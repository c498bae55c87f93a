"""Trace -> correlation state: a bounded in-process cache over the trace links in ClickHouse.

Why not a Faust table: with the memory store a table is rebuilt from its changelog at every
start, and after a worker was killed with SIGKILL Faust's recovery stalled on the changelog
(no progress for minutes, measured with tests/integration/test_worker_crash.py), holding
every partition. The trace links the sink stores are the same mapping, durable and shared
by every worker and by replay; a cache with a bound keeps memory flat."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Mapping

from agents.enrich.logic import TraceState
from schemas.enriched import LINKS_TABLE
from sinks.warehouse import Warehouse

# About a minute of traces at 3k traces/s: enough to span the arrival of one trace's parts.
TRACE_CACHE_TRACES = 200_000


def stored_states(warehouse: Warehouse, trace_ids: set[str]) -> dict[str, TraceState]:
    """The best stored link of each trace: the ID every record of the trace shows."""
    ids = sorted(t for t in trace_ids if t)
    if not ids:
        return {}
    rows = warehouse.query(
        "SELECT TraceId, argMin(CorrelationId, (Priority, FirstSeen)) AS id, "
        "argMin(Source, (Priority, FirstSeen)) AS source, min(Priority) AS priority, "
        "toUnixTimestamp64Nano(min(FirstSeen)) AS first_ns "
        f"FROM {warehouse.database}.{LINKS_TABLE} WHERE TraceId IN {{ids:Array(String)}} GROUP BY TraceId",
        {"ids": ids},
    )
    return {r["TraceId"]: TraceState(r["id"], r["source"], int(r["priority"]), int(r["first_ns"])) for r in rows}


class TraceStates:
    """States of recent traces; a miss asks the warehouse once, and remembers a "none"."""

    def __init__(self, warehouse: Warehouse, max_traces: int) -> None:
        self.warehouse = warehouse
        self.max_traces = max_traces
        self._states: OrderedDict[str, TraceState | None] = OrderedDict()

    async def known(self, trace_ids: set[str]) -> dict[str, TraceState]:
        """States of the traces among ``trace_ids`` that were seen before (here or stored)."""
        missing = {t for t in trace_ids if t and t not in self._states}
        if missing:
            found = await asyncio.to_thread(stored_states, self.warehouse, missing)
            for trace_id in missing:
                self._put(trace_id, found.get(trace_id))
        known = {}
        for trace_id in trace_ids:
            state = self._states.get(trace_id)
            if state is not None:
                self._states.move_to_end(trace_id)
                known[trace_id] = state
        return known

    def remember(self, updates: Mapping[str, TraceState]) -> None:
        for trace_id, state in updates.items():
            self._put(trace_id, state)

    def _put(self, trace_id: str, state: TraceState | None) -> None:
        self._states[trace_id] = state
        self._states.move_to_end(trace_id)
        while len(self._states) > self.max_traces:
            self._states.popitem(last=False)
