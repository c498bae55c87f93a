"""What a query may see: the database's tables and, with auth on, one tenant's rows."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.span_predicates import ERROR_STATUS as ERROR_STATUS  # the queries take it from here
from schemas.span_predicates import TENANT_OF_RESOURCE
from schemas.tables import TRACE_ROWS_TABLE
from sinks.warehouse import check_identifier

# Filters on TraceId may skip granules under FINAL without widening to whole key ranges:
# TraceId is in every sort key we filter this way, so all versions of a row sit in granules
# whose trace-ID bloom filter matches.
BY_TRACE_SETTINGS = "SETTINGS use_skip_indexes_if_final_exact_mode = 0"
# One lookup row (0012): versions of a row until parts merge, and an exemplar stored under
# both its trace and its ID, share it.
LOOKUP_ROW_KEY = "Kind, SpanId, RowKey"
# Where a table keeps the tenant of a row: the resource attribute the gateway stamps
# (TENANT_OF_RESOURCE), or a column of its own (trace links, exemplars, the score stage's
# tables, the rollups).
TENANT_COLUMN = "Tenant"
# A list of trace IDs travels as one String parameter: array parameters are not portable
# between chDB and clickhouse-driver. Trace IDs are hex, so ',' cannot occur inside one.
TRACE_ID_SET = "(SELECT arrayJoin(splitByChar(',', {trace_ids:String})) AS t WHERE t != '')"


@dataclass(frozen=True)
class QueryScope:
    """The database to read and the tenant to restrict to (None: every row)."""

    database: str
    tenant: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.database, "database")

    def table(self, name: str) -> str:
        return f"{self.database}.{check_identifier(name, 'table')}"

    def tenant_filter(self, column: str = TENANT_OF_RESOURCE) -> str:
        """``AND <column> = {tenant}`` restricting rows to the scope's tenant, or '' without one.

        ``column`` is where the table keeps a row's tenant: the resource attribute (the
        default, for span, log and metric tables) or ``TENANT_COLUMN``."""
        return "" if self.tenant is None else f" AND {column} = {{tenant:String}}"

    def trace_rows(self, keys: str, kinds: str) -> str:
        """A FROM source: the lookup rows (0012) whose LookupKey the condition ``keys``
        selects, of the Kind values ``kinds`` (a comma-separated list), visible in the
        scope, one per row.

        Read without FINAL: a row's versions sit in a few small granules, and until parts
        merge a replayed row is dropped by LIMIT 1 BY its key (its copies differ at most in
        the CorrelationId a replay after an ID upgrade stamped, which FINAL would also pick by
        insertion order)."""
        return (f"(SELECT * FROM {self.table(TRACE_ROWS_TABLE)} PREWHERE {keys} "
                f"WHERE Kind IN ({kinds}){self.tenant_filter(TENANT_COLUMN)} LIMIT 1 BY {LOOKUP_ROW_KEY})")

    def params(self, **values: Any) -> dict[str, Any]:
        """``values`` plus the tenant parameter when the scope has one."""
        if self.tenant is not None:
            values["tenant"] = self.tenant
        return values


def trace_id_list(trace_ids: Iterable[str]) -> str:
    """The value of the ``trace_ids`` parameter of TRACE_ID_SET."""
    return ",".join(trace_ids)


def time_filter(column: str = "Timestamp") -> str:
    """An ``AND …`` fragment for [start_ns, end_ns) on a DateTime64(9) column."""
    return (f" AND {column} >= fromUnixTimestamp64Nano({{start_ns:Int64}})"
            f" AND {column} < fromUnixTimestamp64Nano({{end_ns:Int64}})")
