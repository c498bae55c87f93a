"""SQL expressions over stored span rows that the query API and the rollups must agree on."""
from __future__ import annotations

from core.tenancy import TENANT_ATTRIBUTE

# Where a span, log or metric row keeps its tenant: the resource attribute the gateway stamps.
TENANT_OF_RESOURCE = f"ResourceAttributes['{TENANT_ATTRIBUTE}']"
# The same, kept by otel_traces in a column of its own since migration 0014 (computed from the
# resource as rows are inserted): what reads many spans reads this, not the whole map.
SPAN_TENANT = "Tenant"
ERROR_STATUS = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
# A request is a span that enters a service: a root, or a server or consumer span.
ENTRY_SPAN = ("(ParentSpanId = '' OR SpanKind IN "
              "('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER'))")
# A span that calls out of its service; what it names may be a node of the service map.
CALLING_SPAN = "SpanKind IN ('Client', 'Producer', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER')"
# The database a client span talks to: the stable key (our semconv stage renames to it)
# first, then the older one a Collector writing straight to ClickHouse may still carry.
DB_SYSTEM = "if(SpanAttributes['db.system.name'] != '', SpanAttributes['db.system.name'], SpanAttributes['db.system'])"
# The remote peer a client span names when no span of the callee was stored.
PEER_NAME = ("if(SpanAttributes['peer.service'] != '', SpanAttributes['peer.service'], "
             "SpanAttributes['server.address'])")


def sketch_duration(column: str) -> str:
    """``column`` (ns) at the precision the rollups keep latencies: the middle of its bucket
    of 16 per power of two (at most 1/32 off). Merging quantile sketches costs per distinct
    value; quantileBFloat16's own 128 buckets per power of two made a merge of 6000 dense
    minute states take 1.1 s in chDB, these 16 take 0.09 s."""
    # float32 bits: sign, 8 of exponent, the top 4 of the mantissa kept, then the bucket's
    # middle bit set (quantileBFloat16 keeps the top 16 bits, so the middle survives).
    return (f"toUInt64(reinterpretAsFloat32(bitOr(bitAnd(reinterpretAsUInt32(toFloat32({column})), 4294443008), "
            f"262144)))")
