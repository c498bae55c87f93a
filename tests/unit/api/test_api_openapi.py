"""The OpenAPI document covers every route, and its parameters are the ones the handlers accept."""
from __future__ import annotations

import re

from api.openapi import openapi_document
from api.routes import alerts, correlate, correlations, exemplars, health, logs, metric_series, services, traces
from api.routes.correlations import CORRELATION_PARAMS
from api.routes.logs import LOG_PARAMS
from api.routes.traces import SEARCH_PARAMS

ROUTES = [*correlate.ROUTES, *traces.ROUTES, *logs.ROUTES, *services.ROUTES, *exemplars.ROUTES, *health.ROUTES,
          *alerts.ROUTES, *metric_series.ROUTES, *correlations.ROUTES]


def documented(path: str) -> set[str]:
    return {param["name"] for param in openapi_document()["paths"][path]["get"]["parameters"]}


def test_every_route_is_documented() -> None:
    paths = set(openapi_document()["paths"])
    for route in ROUTES:
        if route.path == "/openapi.json":
            continue
        assert re.sub(r":path}", "}", route.path) in paths, route.path


def test_documented_query_parameters_are_the_accepted_ones() -> None:
    assert documented("/api/v1/traces") == SEARCH_PARAMS
    assert documented("/api/v1/logs") == LOG_PARAMS
    assert documented("/api/v1/correlations") == CORRELATION_PARAMS
    assert documented("/api/v1/metrics/{metric_name}/exemplars") == {"metric_name", "service", "start", "end",
                                                                     "limit", "offset"}
    assert documented("/api/v1/metrics/{metric_name}") == {"metric_name", *metric_series.SERIES_PARAMS}


def test_every_data_operation_documents_its_errors() -> None:
    for path, item in openapi_document()["paths"].items():
        if path.startswith("/api/v1/"):
            for operation in item.values():
                assert {"400", "401", "500", "503"} <= set(operation["responses"]), path


def test_alert_routes_document_the_parameters_they_accept() -> None:
    from api.routes.alerts import (
        ALERT_PARAMS,
        ANOMALY_PARAMS,
        DETECT_FIELDS,
        PREDICT_FIELDS,
        TREND_PARAMS,
    )

    assert documented("/api/v1/anomalies") == ANOMALY_PARAMS
    assert documented("/api/v1/alerts") == ALERT_PARAMS
    assert documented("/api/v1/trends") == TREND_PARAMS
    body = lambda path: set(openapi_document()["paths"][path]["post"]["requestBody"]["content"]  # noqa: E731
                            ["application/json"]["schema"]["properties"])
    assert body("/api/v1/anomalies/detect") == DETECT_FIELDS
    assert body("/api/v1/alerts/predict") == PREDICT_FIELDS
