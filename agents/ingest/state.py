"""Trace -> correlation state: a bounded in-process cache over the trace links in ClickHouse.

Why not a Faust table: with the memory store a table is rebuilt from its changelog at every
start, and after a worker was killed with SIGKILL Faust's recovery stalled on the changelog
(no progress for minutes, measured with tests/integration/test_worker_crash.py), holding
every partition. The trace links the ingest stage stores are the same mapping, durable and shared
by every worker and by replay; a cache with a bound keeps memory flat."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping

from agents.ingest.logic import TraceKey, TraceState
from schemas.tables import TRACE_LINKS_TABLE
from sinks.warehouse import Warehouse


def stored_states(warehouse: Warehouse, traces: Collection[TraceKey]) -> dict[TraceKey, TraceState]:
    """The best stored link of each (tenant, trace): the ID every record of the trace shows."""
    ids = sorted({trace_id for _, trace_id in traces if trace_id})
    if not ids:
        return {}
    rows = warehouse.query(
        "SELECT Tenant, TraceId, argMin(CorrelationId, (Priority, FirstSeen)) AS id, "
        "argMin(Source, (Priority, FirstSeen)) AS source, min(Priority) AS priority, "
        "toUnixTimestamp64Nano(min(FirstSeen)) AS first_ns "
        f"FROM {warehouse.database}.{TRACE_LINKS_TABLE} WHERE TraceId IN {{ids:Array(String)}} "
        "GROUP BY Tenant, TraceId",
        {"ids": ids},
    )
    found = {(r["Tenant"], r["TraceId"]): TraceState(r["id"], r["source"], int(r["priority"]), int(r["first_ns"]))
             for r in rows}
    return {key: state for key, state in found.items() if key in traces}


class TraceStates:
    """States of recent traces; a miss asks the warehouse once, and remembers a "none"."""

    def __init__(self, warehouse: Warehouse, max_traces: int) -> None:
        self.warehouse = warehouse
        self.max_traces = max_traces
        self._states: OrderedDict[TraceKey, TraceState | None] = OrderedDict()

    async def known(self, traces: Iterable[TraceKey]) -> dict[TraceKey, TraceState]:
        """States of the (tenant, trace) keys among ``traces`` seen before (here or stored)."""
        missing = {t for t in traces if t[1] and t not in self._states}
        if missing:
            found = await asyncio.to_thread(stored_states, self.warehouse, missing)
            for key in missing:
                self._put(key, found.get(key))
        known = {}
        for key in traces:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
                known[key] = state
        return known

    def remember(self, updates: Mapping[TraceKey, TraceState]) -> None:
        for key, state in updates.items():
            self._put(key, state)

    def _put(self, key: TraceKey, state: TraceState | None) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.max_traces:
            self._states.popitem(last=False)
