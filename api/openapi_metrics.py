"""OpenAPI path and schemas of the metric series route (api/routes/metric_series.py)."""
from __future__ import annotations

from typing import Any

from api.openapi_params import LIMITS, P_END, P_START, TEXT_DOC, get_operation, name_param, param
from api.openapi_schemas import ATTRS, INT, NUM, RANGE, STR, TS, Schema, array, nullable, obj, ref
from api.params import ATTRIBUTE_KEY_MAX_CHARS, ATTRIBUTE_KEY_PATTERN
from api.queries.metric_series import MAX_FILTERS, MAX_GROUP_BY_KEYS, MAX_STEP_S, MAX_STEPS

_KEY = ATTRIBUTE_KEY_PATTERN
_VALUE = r"[^,=]+"
P_GROUP_BY = param("group_by", "query", {
    "type": "string", "pattern": rf"^{_KEY}(,{_KEY}){{0,{MAX_GROUP_BY_KEYS - 1}}}$",
    "maxLength": MAX_GROUP_BY_KEYS * (ATTRIBUTE_KEY_MAX_CHARS + 1)},
    f"attribute keys to group by, comma-separated (at most {MAX_GROUP_BY_KEYS}, each once); a key is "
    "looked up in the point attributes, then the resource's; service.name is the service")
P_FILTER = param("filter", "query", {
    "type": "string", "pattern": rf"^{_KEY}={_VALUE}(,{_KEY}={_VALUE}){{0,{MAX_FILTERS - 1}}}$",
    "maxLength": 1024},
    f"key=value pairs, comma-separated (at most {MAX_FILTERS}): only points whose attribute (point, then "
    "resource; service.name is the service) has the value. " + TEXT_DOC)
P_STEP = param("step_s", "query", {"type": "integer", "minimum": 1, "maximum": MAX_STEP_S},
               f"step length in seconds; default about 300 steps over the range, at most {MAX_STEPS} steps")
P_KIND = param("kind", "query", {"type": "string", "enum": ["gauge", "sum", "histogram"]},
               "which table to read when a name is stored as more than one kind")
P_AGGREGATION = param("aggregation", "query", {"type": "string", "enum": ["last", "avg"]},
                      "gauges (and up-down counters): last = each series' last point in the step, summed over "
                      "the group's series; avg = the mean of the group's points in the step. Default last")

_VALUE_POINT = obj({"timestamp": TS, "value": nullable(NUM)})
_HISTOGRAM_POINT = obj({"timestamp": TS, "count": INT, "sum": nullable(NUM), "buckets": array(INT),
                        "p50": nullable(NUM), "p95": nullable(NUM), "p99": nullable(NUM)})
METRIC_SCHEMAS: dict[str, Schema] = {
    "MetricSeries": obj({
        "metric_name": STR,
        "kind": {"type": "string", "enum": ["gauge", "sum", "histogram"]},
        "unit": STR,
        "applied": {"type": "string", "description": (
            "what a step holds: last or avg (gauges, up-down counters), increase (monotonic cumulative sums: "
            "the increase within the step, resets handled, no extrapolation), sum (delta sums: the sum of "
            "the step's points), increase+sum (both temporalities), merged_buckets (histograms: bucket "
            "counts added in the step, merged over the group, with p50/p95/p99 estimated from them)")},
        "time_range": RANGE, "step_s": INT, "group_by": array(STR), "filter": ATTRS,
        "truncated": {"type": "boolean", "description": "more group x step rows than one answer holds"},
        "series": array(obj({"attributes": ATTRS, "points": array({"anyOf": [_VALUE_POINT, _HISTOGRAM_POINT]})},
                            bounds=array(NUM))),
        "exemplars": array(ref("Exemplar")),
    }),
}


def metric_paths() -> dict[str, Any]:
    """The path of the series route (merged into the document by api/openapi.py)."""
    return {"/api/v1/metrics/{metric_name}": get_operation(
        "A gauge, sum or histogram per step, grouped by attributes, with its exemplars",
        [name_param("metric_name", "the metric name", "path"), P_START, P_END, P_STEP, P_GROUP_BY, P_FILTER,
         P_KIND, P_AGGREGATION],
        ref("MetricSeries"), 404,
        doc="Steps are [timestamp, timestamp + step_s) from start. A cumulative point adds its difference to the "
            "previous point of its series (read up to max(5 minutes, step_s) before start), or its whole value "
            "after a reset (a lower value or a new start time); the first point of a series is only a baseline "
            "(no extrapolation). Histograms give one series per group and bucket layout (bounds). Exemplars: "
            f"the first {LIMITS.max_lookup_exemplars} in the range, oldest first. 404 for a metric never stored; "
            "400 naming kind when a name is stored as several kinds, or metric_name when it is an exponential "
            "histogram or summary.")}
