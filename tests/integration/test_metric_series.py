"""GET /api/v1/metrics/{name} on metrics stored through the real ingest path: gauges, a
cumulative sum with resets, a delta sum, histogram quantiles, group_by, filters, exemplars."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from agents.ingest.batching import RECORD
from api.app import create_app
from api.presentation.rows import iso_ns
from core.settings import ApiSettings, Settings
from sinks.warehouse import Warehouse
from tests.support.ingesting import ingestor

S = 1_000_000_000
DAY_NS = 86_400 * S
# Yesterday 10:00 UTC: recent, because the exemplar table's TTL drops old rows on insert.
T0 = (time.time_ns() // DAY_NS - 1) * DAY_NS + 10 * 3600 * S
RANGE = {"start": str(T0 // 1_000_000), "end": str((T0 + 40 * S) // 1_000_000), "step_s": "20"}
STEP0, STEP1 = iso_ns(T0), iso_ns(T0 + 20 * S)
TRACE = "0af7651916cd43dd8448eb211c80319c"
BOUNDS = [10.0, 100.0, 1000.0]


def attrs(**values: str) -> list[KeyValue]:
    return [KeyValue(key=k.replace("__", "."), value=AnyValue(string_value=v)) for k, v in values.items()]


def number(at_s: float, value: float, start_s: float = -3600, **labels: str) -> NumberDataPoint:
    return NumberDataPoint(time_unix_nano=T0 + int(at_s * S), start_time_unix_nano=T0 + int(start_s * S),
                           as_double=value, attributes=attrs(**labels))


def bucket_point(at_s: float, counts: list[int], total: float, exemplar: bool = False) -> HistogramDataPoint:
    point = HistogramDataPoint(time_unix_nano=T0 + int(at_s * S), start_time_unix_nano=T0 - 3600 * S,
                               count=sum(counts), sum=total, bucket_counts=counts, explicit_bounds=BOUNDS,
                               attributes=attrs(route="/a"))
    if exemplar:
        point.exemplars.append(Exemplar(time_unix_nano=T0 + 5 * S, as_double=420.0, trace_id=bytes.fromhex(TRACE),
                                        span_id=bytes.fromhex("b7ad6b7169203331")))
    return point


def cumulative(name: str, *points: NumberDataPoint) -> Metric:
    return Metric(name=name, unit="1", sum=Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
                                               is_monotonic=True, data_points=points))


METRICS = [
    Metric(name="queue.depth", unit="1", gauge=Gauge(data_points=[
        number(0, 5, queue="q1"), number(10, 7, queue="q1"), number(20, 3, queue="q1"),
        number(5, 10, queue="q2"), number(25, 20, queue="q2")])),
    cumulative("http.requests",
               # /a: a baseline before the range, then a reset by a lower value at +30 s.
               number(-60, 100, route="/a"), number(0, 110, route="/a"), number(10, 115, route="/a"),
               number(20, 125, route="/a"), number(30, 4, route="/a"),
               # /b: first seen in the range, so its first point is only a baseline.
               number(0, 50, route="/b"), number(20, 60, route="/b"),
               # /c: restarted (a new start time) with a higher value: all of it is new.
               number(0, 1000, route="/c"), number(10, 2000, start_s=5, route="/c")),
    Metric(name="bytes.sent", unit="By", sum=Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA,
                                                 is_monotonic=True, data_points=[
        number(1, 3), number(2, 4), number(25, 10)])),
    Metric(name="http.duration", unit="ms", histogram=Histogram(
        aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, data_points=[
            bucket_point(-30, [1, 1, 0, 0], 60), bucket_point(5, [3, 5, 1, 1], 3000, exemplar=True),
            bucket_point(25, [3, 9, 1, 1], 3200),
            bucket_point(35, [1, 0, 0, 0], 5)])),  # a reset: fewer observations than before
    Metric(name="rpc.size", unit="By", exponential_histogram=ExponentialHistogram(
        aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA, data_points=[
            ExponentialHistogramDataPoint(time_unix_nano=T0 + S, count=1, sum=1.0, scale=0)])),
]


async def store(wh: Warehouse, request: ExportMetricsServiceRequest) -> None:
    """The request through the ingest stage, its tables inserted as the worker inserts them."""
    ingested = await ingestor(wh).ingest("metrics", [request.SerializeToString()])
    assert not ingested.refused
    for name, table in ingested.tables.items():
        wh.insert_arrow(name, table.drop_columns([RECORD]))


SCENARIO = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
    resource=Resource(attributes=attrs(service__name="api", tenant__id="acme")),
    scope_metrics=[ScopeMetrics(metrics=METRICS)])])


@pytest_asyncio.fixture
async def client(warehouse: Warehouse) -> AsyncIterator[httpx.AsyncClient]:
    await store(warehouse, SCENARIO)
    app = create_app(Settings(api=ApiSettings(keys={})), warehouse, clock_ns=lambda: T0 + 3600 * S)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


async def series(client: httpx.AsyncClient, name: str, expect: int = 200, **params: str) -> Any:
    response = await client.get(f"/api/v1/metrics/{name}", params={**RANGE, **params})
    assert response.status_code == expect, response.text
    return response.json()


def values(body: Any) -> dict[tuple[tuple[str, str], ...], list[tuple[str, float]]]:
    return {tuple(sorted(s["attributes"].items())): [(p["timestamp"], p["value"]) for p in s["points"]]
            for s in body["series"]}


@pytest.mark.asyncio
@pytest.mark.parametrize(("params", "expected"), [
    pytest.param({}, {(): [(STEP0, 17.0), (STEP1, 23.0)]}, id="last-of-each-series-summed"),
    pytest.param({"aggregation": "avg", "group_by": "queue"},
                 {(("queue", "q1"),): [(STEP0, 6.0), (STEP1, 3.0)], (("queue", "q2"),): [(STEP0, 10.0), (STEP1, 20.0)]},
                 id="avg-by-queue"),
    pytest.param({"filter": "queue=q2", "group_by": "service.name"},
                 {(("service.name", "api"),): [(STEP0, 10.0), (STEP1, 20.0)]}, id="filtered-by-service"),
])
async def test_a_gauge_is_its_last_or_mean_value_per_step(client: httpx.AsyncClient, params: dict[str, str],
                                                          expected: Any) -> None:
    body = await series(client, "queue.depth", **params)
    assert (body["kind"], body["unit"], body["applied"]) == ("gauge", "1", params.get("aggregation", "last"))
    assert values(body) == expected


@pytest.mark.asyncio
async def test_a_cumulative_sum_is_its_increase_per_step_across_resets(client: httpx.AsyncClient) -> None:
    body = await series(client, "http.requests", group_by="route")
    assert body["applied"] == "increase"
    assert values(body) == {
        (("route", "/a"),): [(STEP0, 15.0), (STEP1, 14.0)],  # 10 + 5; 10 + 4 after the reset
        (("route", "/b"),): [(STEP1, 10.0)],
        (("route", "/c"),): [(STEP0, 2000.0)],
    }
    assert values(await series(client, "http.requests")) == {(): [(STEP0, 2015.0), (STEP1, 24.0)]}


@pytest.mark.asyncio
async def test_a_delta_sum_is_the_sum_of_its_points_per_step(client: httpx.AsyncClient) -> None:
    body = await series(client, "bytes.sent")
    assert (body["applied"], body["unit"]) == ("sum", "By")
    assert values(body) == {(): [(STEP0, 7.0), (STEP1, 10.0)]}


@pytest.mark.asyncio
async def test_a_histogram_merges_its_buckets_and_estimates_quantiles(client: httpx.AsyncClient) -> None:
    body = await series(client, "http.duration", group_by="route")
    assert body["applied"] == "merged_buckets"
    (only,) = body["series"]
    assert (only["attributes"], only["bounds"]) == ({"route": "/a"}, BOUNDS)
    first, second = only["points"]
    assert (first["timestamp"], first["buckets"], first["count"], first["sum"]) == (STEP0, [2, 4, 1, 1], 8, 2940.0)
    assert (first["p50"], first["p95"], first["p99"]) == (55.0, 1000.0, 1000.0)  # p95 is in the overflow bucket
    # [0, 4, 0, 0] added by +25 s, then [1, 0, 0, 0] counted whole after the reset at +35 s.
    assert (second["timestamp"], second["buckets"], second["count"], second["sum"]) == (STEP1, [1, 4, 0, 0], 5, 205.0)
    assert (second["p50"], second["p95"], second["p99"]) == pytest.approx((43.75, 94.375, 98.875))
    (exemplar,) = body["exemplars"]
    assert (exemplar["trace_id"], exemplar["value"], exemplar["timestamp"]) == (TRACE, 420.0, iso_ns(T0 + 5 * S))


@pytest.mark.asyncio
async def test_refusals_name_the_problem(client: httpx.AsyncClient) -> None:
    missing = await series(client, "no.such.metric", 404)
    assert "no metric named 'no.such.metric'" in missing["message"]
    wrong = await series(client, "rpc.size", 400)
    assert wrong["parameter"] == "metric_name" and "exponential_histogram" in wrong["message"]
    assert (await series(client, "queue.depth", 400, kind="sum"))["parameter"] == "kind"
    assert (await series(client, "queue.depth", 400, group_by="a,b,c,d,e,f"))["parameter"] == "group_by"
    assert (await series(client, "queue.depth", 400, group_by="x'); DROP"))["parameter"] == "group_by"
    assert (await series(client, "queue.depth", 400, filter="queue"))["parameter"] == "filter"
    assert (await series(client, "queue.depth", 400, step_s="0"))["parameter"] == "step_s"


@pytest.mark.asyncio
async def test_a_tenant_sees_only_its_own_metrics(warehouse: Warehouse, client: httpx.AsyncClient) -> None:
    keys = {"key-acme": "acme", "key-other": "other"}
    app = create_app(Settings(api=ApiSettings(keys=keys)), warehouse, clock_ns=lambda: T0 + 3600 * S)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        own = await c.get("/api/v1/metrics/bytes.sent", params=RANGE, headers={"X-API-Key": "key-acme"})
        other = await c.get("/api/v1/metrics/bytes.sent", params=RANGE, headers={"X-API-Key": "key-other"})
    assert own.status_code == 200 and values(own.json()) == {(): [(STEP0, 7.0), (STEP1, 10.0)]}
    assert other.status_code == 404, other.text


@pytest.mark.parametrize("name", ["queue.depth", "http.requests", "bytes.sent", "http.duration"])
def test_answers_match_the_openapi_document(warehouse: Warehouse, name: str) -> None:
    asyncio.run(store(warehouse, SCENARIO))
    app = create_app(Settings(api=ApiSettings(keys={})), warehouse, clock_ns=lambda: T0 + 3600 * S)
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)["/api/v1/metrics/{metric_name}"]["GET"]
    case = operation.Case(path_parameters={"metric_name": name}, query={**RANGE, "group_by": "route,queue"})
    response = case.call_and_validate()
    assert response.status_code == 200 and response.json()["series"]
