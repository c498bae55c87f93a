"""OTLP export requests as the ClickHouse engine reads them: a Protobuf schema generated from
the installed OTLP descriptors, the nested columns each request is parsed into, and the
framing that hands a batch of raw records to the engine in one stream.

Two changes to OTLP's own schema make it readable by the engine: ``AnyValue``'s array and
kvlist members are read as opaque bytes (the engine's types cannot recurse; the few such
values are turned into JSON text in Python), and each root message carries an extra field,
the index of the raw record in its batch, so every row knows which record it came from."""
from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from core.types import Signal

# The largest field number protobuf allows: no OTLP version will ever use it.
RECORD_FIELD_NUMBER = (1 << 29) - 1
RECORD_COLUMN = "ollystack_record"


_ONE_BYTE_VARINTS = [bytes([i]) for i in range(0x80)]


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf base-128 varint."""
    # Most values (lengths of spans and log records, record indexes) take one or two bytes.
    if n < 0x80:
        return _ONE_BYTE_VARINTS[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_RECORD_TAG = varint(RECORD_FIELD_NUMBER << 3)  # wire type 0: varint

REQUESTS: dict[Signal, type[ExportTraceServiceRequest | ExportLogsServiceRequest | ExportMetricsServiceRequest]] = {
    "traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest, "metrics": ExportMetricsServiceRequest}
ROOTS: dict[Signal, Descriptor] = {signal: request.DESCRIPTOR for signal, request in REQUESTS.items()}
# Kept serialized: their values are AnyValues again, which no column type can hold.
_OPAQUE_MESSAGES = frozenset({"opentelemetry.proto.common.v1.ArrayValue",
                              "opentelemetry.proto.common.v1.KeyValueList"})
_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED64: "fixed64", FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64", FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SINT64: "sint64", FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_ENUM: "int32",  # enums travel as varints; numbers out of range stay readable
}


def proto_schema(signal: Signal) -> str:
    """The .proto text the engine parses ``signal``'s raw records with (see the module doc)."""
    root = ROOTS[signal]
    messages: list[str] = []
    seen: set[str] = set()
    todo = [root]
    while todo:
        message = todo.pop(0)
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        lines = [f"message {message.name} {{"]
        oneofs: dict[str, list[str]] = {}
        for field in message.fields:
            label = "repeated " if field.is_repeated else ""
            line = f"{label}{_field_type(field, todo)} {field.name} = {field.number};"
            oneof = field.containing_oneof
            # proto3 `optional` fields sit in synthetic oneofs ("_sum"): plain fields here.
            if oneof is not None and not oneof.name.startswith("_"):
                oneofs.setdefault(oneof.name, []).append(line)
            else:
                lines.append("  " + line)
        for name, members in oneofs.items():
            lines += [f"  oneof {name} {{", *(f"    {m}" for m in members), "  }"]
        if message is root:
            lines.append(f"  uint64 {RECORD_COLUMN} = {RECORD_FIELD_NUMBER};")
        messages.append("\n".join([*lines, "}"]))
    return 'syntax = "proto3";\n\n' + "\n\n".join(messages) + "\n"


def _field_type(field: FieldDescriptor, todo: list[Descriptor]) -> str:
    message = field.message_type
    if message is None:
        return _SCALARS[field.type]
    if message.full_name in _OPAQUE_MESSAGES:
        return "bytes"
    todo.append(message)
    return str(message.name)


def frame(records: Sequence[tuple[int, bytes]]) -> bytes:
    """Raw records, given as (index in the batch, value), as one stream of the engine's
    ``Protobuf`` format: each length-delimited and tagged with its index. A record that is
    not valid protobuf makes the whole stream fail to parse; the caller then finds it."""
    parts: list[bytes] = []
    for index, value in records:
        tagged = _RECORD_TAG + varint(index)
        parts += (varint(len(tagged) + len(value)), tagged, value)
    return b"".join(parts)


# The staging columns: each raw record as one row of nested tuples, named as in OTLP so
# the engine maps fields by name. Only what some table stores is read; `value` (the oneof's
# name) in an AnyValue says which member is set, so 0, false and "" stay distinguishable.
ANY_VALUE = ("Tuple(string_value String, bool_value Bool, int_value Int64, double_value Float64, "
             "array_value String, kvlist_value String, bytes_value String, value Enum8('none' = 0, "
             "'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, "
             "'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8))")
ATTRIBUTES = f"Array(Tuple(key String, value {ANY_VALUE}))"
_RESOURCE = f"resource Tuple(attributes {ATTRIBUTES})"
_SCOPE = f"scope Tuple(name String, version String, attributes {ATTRIBUTES}, dropped_attributes_count UInt32)"
_SPAN = (
    "Tuple(trace_id String, span_id String, trace_state String, parent_span_id String, name String, "
    "kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {ATTRIBUTES}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {ATTRIBUTES})), "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {ATTRIBUTES})), "
    "status Tuple(message String, code Int32))"
)
_LOG = (
    "Tuple(time_unix_nano UInt64, observed_time_unix_nano UInt64, severity_number Int32, severity_text String, "
    f"body {ANY_VALUE}, attributes {ATTRIBUTES}, flags UInt32, trace_id String, span_id String, event_name String)"
)
_EXEMPLARS = (f"exemplars Array(Tuple(filtered_attributes {ATTRIBUTES}, time_unix_nano UInt64, span_id String, "
              "trace_id String, as_double Float64, as_int Int64))")
_POINT_HEAD = f"attributes {ATTRIBUTES}, start_time_unix_nano UInt64, time_unix_nano UInt64, flags UInt32"
_NUMBER_POINTS = f"data_points Array(Tuple({_POINT_HEAD}, as_double Float64, as_int Int64, {_EXEMPLARS}))"
_METRIC = (
    "Tuple(name String, description String, unit String, "
    f"gauge Tuple({_NUMBER_POINTS}), "
    f"sum Tuple({_NUMBER_POINTS}, aggregation_temporality Int32, is_monotonic Bool), "
    f"histogram Tuple(data_points Array(Tuple({_POINT_HEAD}, count UInt64, sum Float64, "
    f"bucket_counts Array(UInt64), explicit_bounds Array(Float64), {_EXEMPLARS}, min Float64, max Float64)), "
    "aggregation_temporality Int32), "
    f"exponential_histogram Tuple(data_points Array(Tuple({_POINT_HEAD}, count UInt64, sum Float64, scale Int32, "
    "zero_count UInt64, positive Tuple(offset Int32, bucket_counts Array(UInt64)), "
    f"negative Tuple(offset Int32, bucket_counts Array(UInt64)), {_EXEMPLARS}, min Float64, max Float64)), "
    "aggregation_temporality Int32), "
    f"summary Tuple(data_points Array(Tuple({_POINT_HEAD}, count UInt64, sum Float64, "
    "quantile_values Array(Tuple(quantile Float64, value Float64))))), "
    "data Enum8('none' = 0, 'gauge' = 5, 'sum' = 7, 'histogram' = 9, 'exponential_histogram' = 10, 'summary' = 11))"
)
STRUCTURES: dict[Signal, str] = {
    "traces": (f"{RECORD_COLUMN} UInt64, resource_spans Array(Tuple({_RESOURCE}, schema_url String, "
               f"scope_spans Array(Tuple({_SCOPE}, schema_url String, spans Array({_SPAN})))))"),
    "logs": (f"{RECORD_COLUMN} UInt64, resource_logs Array(Tuple({_RESOURCE}, schema_url String, "
             f"scope_logs Array(Tuple({_SCOPE}, schema_url String, log_records Array({_LOG})))))"),
    "metrics": (f"{RECORD_COLUMN} UInt64, resource_metrics Array(Tuple({_RESOURCE}, schema_url String, "
                f"scope_metrics Array(Tuple({_SCOPE}, schema_url String, metrics Array({_METRIC})))))"),
}
ROOT_MESSAGES: dict[Signal, str] = {signal: str(root.name) for signal, root in ROOTS.items()}
