"""OllyStack's Grafana dashboards as code (grafana-foundation-sdk), written to ops/grafana/dashboards/.

    python ops/grafana/build_dashboards.py           # write the JSON files
    python ops/grafana/build_dashboards.py --check   # exit 1 when the files differ from the code

The SDK has no query type for the ClickHouse plugin, so ClickHouseQuery below is one: the
plugin's target fields (rawSql, format, queryType, editorType). Every panel's SQL is run on
demo data by tests/integration/test_metrics_and_dashboards.py."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, logs, nodegraph, prometheus, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model

OUT = Path(__file__).resolve().parent / "dashboards"
CLICKHOUSE = model.DataSourceRef(type_val="grafana-clickhouse-datasource", uid="ollystack-clickhouse")
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="ollystack-prometheus")
QueryKind = Literal["timeseries", "table", "logs"]
_FORMATS: dict[QueryKind, int] = {"timeseries": 0, "table": 1, "logs": 2}  # the plugin's Format enum
# A request: a root span, or one a service serves (server, consumer).
ENTRY = "(ParentSpanId = '' OR SpanKind IN ('Server', 'Consumer'))"
IN_RANGE = "$__timeFilter(Timestamp)"
EDGES_IN_RANGE = "$__timeFilter(Minute)"
EXPLORER = "http://localhost:8080/correlate/${__value.raw}"  # the API as compose publishes it
CORRELATION_LINKS = [
    {"title": "Correlation overview",
     "url": "/d/ollystack-correlation/correlation-overview?var-correlation_id=${__value.raw}&${__url_time_range}"},
    {"title": "Open in the Correlation Explorer", "url": EXPLORER, "targetBlank": True},
]


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL target of grafana-clickhouse-datasource."""

    def __init__(self, ref_id: str, sql: str, kind: QueryKind) -> None:
        self.ref_id, self.sql, self.kind = ref_id, " ".join(sql.split()), kind

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": CLICKHOUSE.to_json(), "editorType": "sql",
                "queryType": self.kind, "format": _FORMATS[self.kind], "rawSql": self.sql}


class SQL(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str, kind: QueryKind = "table", ref_id: str = "A") -> None:
        self._query = ClickHouseQuery(ref_id, sql, kind)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def promql(expr: str, legend: str, ref_id: str = "A", exemplar: bool = False) -> prometheus.Dataquery:
    return (prometheus.Dataquery().ref_id(ref_id).datasource(PROMETHEUS).expr(expr).legend_format(legend)
            .range().exemplar(exemplar))


def variable(name: str, label: str, sql: str, multi: bool = False) -> db.QueryVariable:
    sql = " ".join(sql.split())
    return (db.QueryVariable(name).label(label).datasource(CLICKHOUSE).query({"editorType": "sql", "rawSql": sql})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(multi).include_all(multi))


def correlation_links() -> model.DynamicConfigValue:
    """A field's links: its value as a correlation ID, in the overview and in the Explorer."""
    return model.DynamicConfigValue(id_val="links", value=CORRELATION_LINKS)


def sql_table(title: str, sql: str, width: int = 12, height: int = 8, description: str = "",
              linked: tuple[str, ...] = ()) -> table.Panel:
    panel = (table.Panel().title(title).description(description).datasource(CLICKHOUSE).with_target(SQL(sql))
             .span(width).height(height))
    for field in linked:
        panel = panel.override_by_name(field, [correlation_links()])
    return panel


def sql_series(title: str, sql: str, unit: str, width: int = 8) -> timeseries.Panel:
    return (timeseries.Panel().title(title).datasource(CLICKHOUSE).with_target(SQL(sql, "timeseries")).unit(unit)
            .span(width).height(8))


def sql_logs(title: str, sql: str, order: common.LogsSortOrder) -> logs.Panel:
    return (logs.Panel().title(title).datasource(CLICKHOUSE).with_target(SQL(sql, "logs")).span(24).height(10)
            .show_time(True).wrap_log_message(True).enable_log_details(True).sort_order(order))


def prom_series(title: str, unit: str, *targets: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).datasource(PROMETHEUS).unit(unit).span(8)
    for target in targets:
        panel = panel.with_target(target)
    return panel.height(8)


def board(uid: str, title: str, description: str, tag: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(["ollystack", tag]).editable()
            .timezone("browser").time("now-1h", "now").refresh("30s").tooltip(model.DashboardCursorSync.CROSSHAIR)
            .link(db.DashboardLink("OllyStack").type(model.DashboardLinkType.DASHBOARDS).tags(["ollystack"])
                  .as_dropdown(True)))


def correlation_overview() -> db.Dashboard:
    where = "CorrelationId = '${correlation_id}' AND $__timeFilter(Timestamp)"
    return (board("ollystack-correlation", "Correlation overview",
                  "Everything stored under one correlation ID: its traces, logs, timeline and services.", "correlation")
            .with_variable(variable("correlation_id", "Correlation ID", f"""
                SELECT CorrelationId FROM otel_traces WHERE {IN_RANGE} AND CorrelationId != ''
                GROUP BY CorrelationId ORDER BY max(Timestamp) DESC LIMIT 500"""))
            .with_panel(sql_table("Summary", f"""
                SELECT uniqExact(TraceId) AS traces, count() AS spans, countIf(StatusCode = 'Error') AS error_spans,
                uniqExact(ServiceName) AS services, min(Timestamp) AS first_seen, max(Timestamp) AS last_seen,
                round(max(Duration) / 1e6, 2) AS longest_span_ms FROM otel_traces WHERE {where}""", 24, 4))
            .with_panel(sql_table("Traces", f"""
                SELECT TraceId, min(Timestamp) AS start, argMin(SpanName, Timestamp) AS first_operation,
                argMin(ServiceName, Timestamp) AS entry_service, count() AS spans,
                countIf(StatusCode = 'Error') AS errors,
                round((max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp)))
                      / 1e6, 2) AS duration_ms
                FROM otel_traces WHERE {where} GROUP BY TraceId ORDER BY start""",
                description="One row a trace; Explore's ClickHouse trace view opens a TraceId, and its logs."))
            .with_panel(sql_table("Services", f"""
                SELECT ServiceName, count() AS spans, countIf(StatusCode = 'Error') AS errors,
                round(quantile(0.95)(Duration) / 1e6, 2) AS p95_ms, min(Timestamp) AS first_seen
                FROM otel_traces WHERE {where} GROUP BY ServiceName ORDER BY first_seen"""))
            .with_panel(sql_table("Timeline", f"""
                SELECT * FROM (
                  SELECT Timestamp AS time, 'span' AS kind, ServiceName, SpanName AS what,
                  round(Duration / 1e6, 2) AS duration_ms, StatusCode AS status, TraceId, SpanId
                  FROM otel_traces WHERE {where}
                  UNION ALL
                  SELECT Timestamp AS time, 'log' AS kind, ServiceName, Body AS what, 0 AS duration_ms,
                  SeverityText AS status, TraceId, SpanId FROM otel_logs WHERE {where}
                ) ORDER BY time LIMIT 1000""", 24, 10, "Spans and logs of the ID in time order."))
            .with_panel(sql_logs("Logs", f"""
                SELECT Timestamp AS timestamp, Body AS body, SeverityText AS level, ServiceName, TraceId, SpanId
                FROM otel_logs WHERE {where} ORDER BY Timestamp LIMIT 1000""", common.LogsSortOrder.ASCENDING)))


def service_map() -> db.Dashboard:
    nodes = f"""
        SELECT name AS id, name AS title, sum(calls) AS mainstat, sum(errors) AS secondarystat,
        if(sum(calls) = 0, 0, sum(errors) / sum(calls)) AS arc__errors, 1 - arc__errors AS arc__ok
        FROM (SELECT Caller AS name, toUInt64(0) AS calls, toUInt64(0) AS errors
              FROM ollystack_service_edges FINAL WHERE {EDGES_IN_RANGE}
              UNION ALL SELECT Callee AS name, Calls AS calls, Errors AS errors
              FROM ollystack_service_edges FINAL WHERE {EDGES_IN_RANGE})
        GROUP BY name ORDER BY name"""
    edges = f"""
        SELECT concat(Caller, ' -> ', Callee) AS id, Caller AS source, Callee AS target, sum(Calls) AS mainstat,
        sum(Errors) AS secondarystat FROM ollystack_service_edges FINAL WHERE {EDGES_IN_RANGE}
        GROUP BY Caller, Callee ORDER BY Caller, Callee"""
    graph = (nodegraph.Panel().title("Service map").datasource(CLICKHOUSE)
             .description("Nodes: calls received and failed; the red arc is the failed share. "
                          "Edges: calls and failed calls.")
             .with_target(SQL(nodes, ref_id="nodes")).with_target(SQL(edges, ref_id="edges")).span(24).height(14)
             .nodes(nodegraph.NodeOptions().main_stat_unit("short").secondary_stat_unit("short")
                    .arcs([nodegraph.ArcOption().field("arc__errors").color("red"),
                           nodegraph.ArcOption().field("arc__ok").color("green")]))
             .edges(nodegraph.EdgeOptions().main_stat_unit("short").secondary_stat_unit("short")))
    return (board("ollystack-service-map", "Service map",
                  "Who calls whom: the per-minute service edges the worker rolls up from the spans.", "services")
            .with_panel(graph)
            .with_panel(sql_table("Calls between services", f"""
                SELECT Caller, Callee, CalleeKind, sum(Calls) AS calls, sum(Errors) AS errors,
                round(sum(Errors) / sum(Calls) * 100, 2) AS error_pct,
                round(quantileBFloat16Merge(0.95)(DurationNs) / 1e6, 2) AS p95_ms
                FROM ollystack_service_edges FINAL WHERE {EDGES_IN_RANGE} GROUP BY Caller, Callee, CalleeKind
                ORDER BY calls DESC""", 24)))


def error_analysis() -> db.Dashboard:
    return (board("ollystack-errors", "Error analysis",
                  "Errors by service and operation, and the messages behind them.", "errors")
            .with_panel(sql_series("Error spans by service", f"""
                SELECT $__timeInterval(Timestamp) AS time, ServiceName, countIf(StatusCode = 'Error') AS errors
                FROM otel_traces WHERE {IN_RANGE} GROUP BY time, ServiceName ORDER BY time""", "short", 24))
            .with_panel(sql_table("Errors by service and operation", f"""
                SELECT ServiceName, SpanName, count() AS spans, countIf(StatusCode = 'Error') AS errors,
                round(errors / spans * 100, 2) AS error_pct,
                argMaxIf(CorrelationId, Timestamp, StatusCode = 'Error') AS last_correlation_id
                FROM otel_traces WHERE {IN_RANGE} GROUP BY ServiceName, SpanName HAVING errors > 0
                ORDER BY errors DESC LIMIT 50""", linked=("last_correlation_id",)))
            .with_panel(sql_table("Top error messages (spans)", f"""
                SELECT ServiceName, StatusMessage AS message, count() AS occurrences, max(Timestamp) AS last_seen,
                argMax(CorrelationId, Timestamp) AS last_correlation_id
                FROM otel_traces WHERE {IN_RANGE} AND StatusCode = 'Error' GROUP BY ServiceName, message
                ORDER BY occurrences DESC LIMIT 20""", linked=("last_correlation_id",)))
            .with_panel(sql_table("Top error messages (logs)", f"""
                SELECT ServiceName, Body AS message, count() AS occurrences, max(Timestamp) AS last_seen,
                argMax(CorrelationId, Timestamp) AS last_correlation_id
                FROM otel_logs WHERE {IN_RANGE} AND SeverityNumber >= 17 GROUP BY ServiceName, message
                ORDER BY occurrences DESC LIMIT 20""", 24, linked=("last_correlation_id",)))
            .with_panel(sql_logs("Error logs", f"""
                SELECT Timestamp AS timestamp, Body AS body, SeverityText AS level, ServiceName, TraceId, SpanId,
                CorrelationId FROM otel_logs WHERE {IN_RANGE} AND SeverityNumber >= 17
                ORDER BY Timestamp DESC LIMIT 500""", common.LogsSortOrder.DESCENDING)))


def traces_overview() -> db.Dashboard:
    requests = f"{IN_RANGE} AND {ENTRY}"
    latency = (heatmap.Panel().title("Latency of ${service}").datasource(CLICKHOUSE)
               .description("Request durations (ms) bucketed on a log scale; one heatmap per selected service.")
               .with_target(SQL(f"""
                   SELECT $__timeInterval(Timestamp) AS time, Duration / 1e6 AS duration_ms
                   FROM otel_traces WHERE {requests} AND ServiceName = '${{service}}'
                   ORDER BY time LIMIT 20000""", "timeseries"))
               .calculate(True)
               .calculation(common_builders.HeatmapCalculationOptions().y_buckets(
                   common_builders.HeatmapCalculationBucketConfig().scale(
                       common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(2))))
               .y_axis(heatmap.YAxisConfig().unit("ms"))
               .color(heatmap.HeatmapColorOptions().mode(heatmap_model.HeatmapColorMode.SCHEME).scheme("Oranges"))
               .cell_gap(1).repeat("service").repeat_direction("h").max_per_row(3).span(24).height(8))
    return (board("ollystack-traces", "Traces overview",
                  "Rate, errors and duration of the requests each service serves (root, server and consumer spans).",
                  "traces")
            .with_variable(variable("service", "Service", f"""
                SELECT DISTINCT ServiceName FROM otel_traces WHERE {IN_RANGE} ORDER BY ServiceName""", multi=True))
            .with_panel(sql_table("RED per service", f"""
                SELECT ServiceName, count() AS requests,
                round(count() / greatest(1, $__toTime - $__fromTime), 3) AS requests_per_s,
                countIf(StatusCode = 'Error') AS errors, round(errors / requests * 100, 2) AS error_pct,
                round(quantile(0.5)(Duration) / 1e6, 2) AS p50_ms, round(quantile(0.95)(Duration) / 1e6, 2) AS p95_ms,
                round(quantile(0.99)(Duration) / 1e6, 2) AS p99_ms
                FROM otel_traces WHERE {requests} GROUP BY ServiceName ORDER BY requests DESC""", 24, 7))
            .with_panel(sql_series("Requests per second", f"""
                SELECT $__timeInterval(Timestamp) AS time, ServiceName, count() / $__interval_s AS requests_per_s
                FROM otel_traces WHERE {requests} GROUP BY time, ServiceName ORDER BY time""", "reqps"))
            .with_panel(sql_series("Error rate", f"""
                SELECT $__timeInterval(Timestamp) AS time, ServiceName,
                countIf(StatusCode = 'Error') / count() AS error_rate
                FROM otel_traces WHERE {requests} GROUP BY time, ServiceName ORDER BY time""", "percentunit"))
            .with_panel(sql_series("p95 duration", f"""
                SELECT $__timeInterval(Timestamp) AS time, ServiceName, quantile(0.95)(Duration) / 1e6 AS p95_ms
                FROM otel_traces WHERE {requests} GROUP BY time, ServiceName ORDER BY time""", "ms"))
            .with_panel(latency)
            .with_panel(sql_table("Slowest requests", f"""
                SELECT Timestamp, ServiceName, SpanName, round(Duration / 1e6, 2) AS duration_ms, StatusCode,
                TraceId, CorrelationId FROM otel_traces WHERE {requests} ORDER BY Duration DESC LIMIT 20""",
                24, linked=("CorrelationId",))))


def pipeline_health() -> db.Dashboard:
    r = "$__rate_interval"
    insert_buckets = f"sum by (le, signal) (rate(ollystack_sink_insert_seconds_bucket[{r}]))"
    return (board("ollystack-pipeline", "Pipeline health",
                  "OllyStack's own metrics: lag, throughput, dead letters and insert latency of every process.",
                  "pipeline")
            .with_panel(prom_series("Consumer lag per partition", "short", promql(
                "sum by (topic, partition) (ollystack_consumer_lag_records)", "{{topic}}/{{partition}}")))
            .with_panel(prom_series(
                "Records in and out per stage", "ops",
                promql(f"sum by (stage, topic) (rate(ollystack_stage_records_in_total[{r}]))",
                       "in {{stage}} {{topic}}"),
                promql(f"sum by (stage, topic) (rate(ollystack_stage_records_out_total[{r}]))",
                       "out {{stage}} {{topic}}", "B")))
            .with_panel(prom_series(
                "Gateway items accepted and rejected", "ops",
                promql(f"sum by (signal) (rate(ollystack_gateway_accepted_items_total[{r}]))", "accepted {{signal}}"),
                promql(f"sum by (signal, reason) (rate(ollystack_gateway_rejected_items_total[{r}]))",
                       "rejected {{signal}} {{reason}}", "B")))
            .with_panel(prom_series("Dead letters by reason", "short", promql(
                f"sum by (stage, kind) (increase(ollystack_deadletters_total[{r}]))", "{{stage}} {{kind}}")))
            .with_panel(prom_series(
                "ClickHouse insert latency", "s",
                promql(f"histogram_quantile(0.5, {insert_buckets})", "p50 {{signal}}"),
                promql(f"histogram_quantile(0.95, {insert_buckets})", "p95 {{signal}}", "B")))
            .with_panel(prom_series("Rows per insert batch", "short", promql(
                f"sum by (signal) (rate(ollystack_sink_batch_rows_sum[{r}])) "
                f"/ sum by (signal) (rate(ollystack_sink_batch_rows_count[{r}]))", "mean {{signal}}")))
            .with_panel(prom_series("Gateway produce latency (p95)", "s", promql(
                f"histogram_quantile(0.95, sum by (le, signal) (rate(ollystack_gateway_produce_seconds_bucket[{r}])))",
                "{{signal}}")))
            .with_panel(prom_series(
                "Correlation IDs", "ops",
                promql(f"sum by (outcome) (rate(ollystack_correlation_ids_total[{r}]))", "{{outcome}}"),
                promql(f"sum by (reason) (rate(ollystack_correlation_rejected_total[{r}]))", "rejected: {{reason}}",
                       "B")))
            .with_panel(prom_series("Cardinality overflow", "ops", promql(
                f"rate(ollystack_cardinality_overflow_total[{r}])", "values replaced")))
            .with_panel(prom_series("Anomaly scores (top 10)", "short", promql(
                "topk(10, ollystack_anomaly_score)", "{{service}} {{operation}}")))
            .with_panel(prom_series(
                "Alerts", "short",
                promql("sum(ollystack_open_alerts)", "open"),
                promql(f"sum by (status) (increase(ollystack_alerts_total[{r}]))", "published {{status}}", "B",
                       exemplar=True),
                description="Exemplars carry the alert's correlation ID and open the Correlation Explorer."))
            .with_panel(prom_series("Query API latency (p95)", "s", promql(
                f"histogram_quantile(0.95, sum by (le, route) "
                f"(rate(ollystack_api_request_duration_seconds_bucket[{r}])))", "{{route}}"))))


DASHBOARDS = {
    "correlation-overview.json": correlation_overview,
    "service-map.json": service_map,
    "error-analysis.json": error_analysis,
    "traces-overview.json": traces_overview,
    "pipeline-health.json": pipeline_health,
}


def render() -> dict[str, str]:
    """Every dashboard's JSON text, by file name."""
    return {name: json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        stale = [name for name, text in rendered.items()
                 if not (OUT / name).exists() or (OUT / name).read_text() != text]
        for name in stale:
            print(f"ops/grafana/dashboards/{name} differs from the code: run python {Path(__file__).name}")
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
