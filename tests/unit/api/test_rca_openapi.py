"""The analysis routes are documented with the body fields they accept and every response key."""
from __future__ import annotations

from api.openapi import openapi_document
from api.routes import rca
from api.routes.incidents import RCA_FIELDS


def test_every_analysis_route_is_documented_with_its_body() -> None:
    paths = openapi_document()["paths"]
    for route in rca.ROUTES:
        body = paths[route.path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {key for shape in body["oneOf"] for key in shape["properties"]} == rca.REQUEST_FIELDS | RCA_FIELDS
        assert {"200", "400", "404"} <= set(paths[route.path]["post"]["responses"])


def test_the_documented_response_keys_are_the_analysis_keys() -> None:
    from api.queries.correlation import CorrelationRows
    from api.rca.request import analyze_request

    schema = openapi_document()["components"]["schemas"]["RequestAnalysis"]
    found = analyze_request(CorrelationRows(correlation_id="x", trace_ids=[]))
    assert set(schema["properties"]) == set(schema["required"]) == set(found)
