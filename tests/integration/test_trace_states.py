"""Trace states read back from the stored links (chDB): per tenant, best source first."""
from __future__ import annotations

import pytest

from agents.correlation import SOURCE_PRIORITY as PRIORITY
from agents.ingest.logic import TraceState
from agents.ingest.state import TraceStates, stored_states
from sinks.batches import rows_to_columns
from sinks.warehouse import Warehouse

T0 = 1_763_856_000_000_000_000
TRACE = "a" * 32


def link(tenant: str, cid: str, source: str, at_ns: int) -> dict[str, object]:
    return {"Tenant": tenant, "TraceId": TRACE, "CorrelationId": cid, "Source": source,
            "Priority": PRIORITY[source], "FirstSeen": T0 + at_ns, "LastSeen": T0 + at_ns}


@pytest.mark.asyncio
async def test_each_tenant_reads_its_own_state_of_a_shared_trace_id(warehouse: Warehouse) -> None:
    warehouse.insert("ollystack_trace_links", rows_to_columns([
        link("acme", "olly-gen", "generated", 0), link("acme", "acme-7", "header", 5),
        link("globex", "globex-1", "resource", 1),
    ]))
    keys = {("acme", TRACE), ("globex", TRACE), ("", TRACE), ("acme", "b" * 32)}
    assert stored_states(warehouse, keys) == {
        ("acme", TRACE): TraceState("acme-7", "header", PRIORITY["header"], T0),
        ("globex", TRACE): TraceState("globex-1", "resource", PRIORITY["resource"], T0 + 1)}
    cache = TraceStates(warehouse, max_traces=10)
    assert set(await cache.known(keys)) == {("acme", TRACE), ("globex", TRACE)}
