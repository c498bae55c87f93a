"""ops/prometheus and ops/grafana as files: what they point at exists, and the dashboards'
ClickHouse queries are rendered as the plugin renders them (the queries themselves run on
demo data in tests/integration/test_metrics_and_dashboards.py)."""
from __future__ import annotations

import importlib.util
from datetime import UTC, datetime

import pytest
import yaml

from core.settings import Settings
from tests.support import grafana

RANGE = grafana.TimeRange(datetime(2026, 12, 3, 6, 0, tzinfo=UTC), datetime(2026, 12, 3, 7, 0, 0, 500_000, tzinfo=UTC),
                          interval_s=30)
FROM_S, TO_S = 1796277600, 1796281200


@pytest.mark.parametrize(("sql", "expanded"), [
    ("$__timeFilter(Timestamp)", f"Timestamp >= toDateTime({FROM_S}) AND Timestamp <= toDateTime({TO_S})"),
    ("$__timeFilter_ms(t)", f"t >= fromUnixTimestamp64Milli({FROM_S}000) AND t <= fromUnixTimestamp64Milli({TO_S}500)"),
    ("$__fromTime / $__toTime", f"toDateTime({FROM_S}) / toDateTime({TO_S})"),
    ("$__timeInterval(Timestamp)", "toStartOfInterval(toDateTime(Timestamp), INTERVAL 30 second)"),
    ("count() / $__interval_s", "count() / 30"),
    ("$__dateFilter(d)", "d >= toDate('2026-12-03') AND d <= toDate('2026-12-03')"),
    ("$__timeInterval(toDateTime64(x, 3)) AS t",
     "toStartOfInterval(toDateTime(toDateTime64(x, 3)), INTERVAL 30 second) AS t"),
], ids=["timeFilter", "timeFilter_ms", "from-to", "timeInterval", "interval_s", "dateFilter", "nested-parentheses"])
def test_macros_expand_as_the_plugin_expands_them(sql: str, expanded: str) -> None:
    assert grafana.expand_macros(sql, RANGE) == expanded


@pytest.mark.parametrize("sql", ["$__timeFilterr(Timestamp)", "$__timeFilter(a, b)", "$__timeFilter"],
                         ids=["unknown", "two-arguments", "no-arguments"])
def test_a_macro_the_plugin_does_not_know_or_a_wrong_call_fails(sql: str) -> None:
    with pytest.raises(ValueError, match=r"\$__timeFilter"):
        grafana.expand_macros(sql, RANGE)


def test_variables_are_replaced_as_the_plugin_formats_them() -> None:
    values = {"id": "order-1", "service": ["a", "b"]}
    assert grafana.replace_variables("x = '${id}' AND s IN (${service}) AND y = '$id'", values) == \
        "x = 'order-1' AND s IN ('a','b') AND y = 'order-1'"
    with pytest.raises(KeyError, match="missing"):
        grafana.replace_variables("${missing}", values)


def test_promql_metric_names_leave_out_functions_labels_and_ranges() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, signal) (rate(ollystack_sink_insert_seconds_bucket'
            '{signal="traces"}[$__rate_interval]))) / ignoring(x) ollystack_open_alerts')
    assert grafana.promql_metric_names(expr) == {"ollystack_sink_insert_seconds_bucket", "ollystack_open_alerts"}


def test_the_datasources_are_the_clickhouse_plugin_in_otel_mode_and_prometheus_with_explorer_exemplars() -> None:
    by_type = {d["type"]: d for d in grafana.datasources()}
    clickhouse, prometheus = by_type[grafana.CLICKHOUSE_PLUGIN], by_type["prometheus"]
    json_data = clickhouse["jsonData"]
    assert json_data["traces"]["otelEnabled"] and json_data["traces"]["defaultTable"] == "otel_traces"
    assert json_data["logs"]["otelEnabled"] and json_data["logs"]["defaultTable"] == "otel_logs"
    assert {c["config"]["field"] for c in clickhouse["correlations"]} == {"TraceId", "CorrelationId"}
    # The password is an environment lookup, never a value in the repository.
    assert clickhouse["secureJsonData"]["password"].startswith("${")
    (exemplar,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplar["name"] == "correlation_id" and exemplar["url"].endswith("/correlate/$${__value.raw}")


def test_every_dashboard_uses_provisioned_datasources_and_has_a_unique_uid() -> None:
    uids = {d["uid"]: d["type"] for d in grafana.datasources()}
    boards = grafana.dashboards()
    assert sorted(boards) == ["correlation-overview.json", "error-analysis.json", "pipeline-health.json",
                              "service-map.json", "traces-overview.json"]
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        for query in grafana.queries(board, name):
            ds = query.target.get("datasource")
            assert ds and uids.get(ds["uid"]) == ds["type"], query.where
    provider = yaml.safe_load((grafana.GRAFANA / "provisioning" / "dashboards" / "ollystack.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_prometheus_scrapes_every_role_on_its_default_port() -> None:
    config = yaml.safe_load((grafana.REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    defaults = Settings()
    assert targets == {"ollystack-gateway": [f"gateway:{defaults.otlp.http_port}"],
                       "ollystack-worker": [f"worker:{defaults.worker.metrics_port}"],
                       "ollystack-api": [f"api:{defaults.api.port}"]}


def test_the_committed_dashboards_are_what_the_code_builds() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboards", grafana.GRAFANA / "build_dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.render()
    assert sorted(built) == sorted(grafana.dashboards())
    for name, text in built.items():
        assert (grafana.DASHBOARDS / name).read_text() == text, f"run python ops/grafana/build_dashboards.py ({name})"
