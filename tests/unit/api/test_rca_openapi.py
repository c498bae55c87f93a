"""The analysis routes are documented with the body fields they accept and every response key."""
from __future__ import annotations

from api.openapi import openapi_document
from api.rca.analyses import RCA_FIELDS, REQUEST_FIELDS
from api.routes import rca

EXPLAINED = ("/api/v1/rca/enhanced", "/api/v1/ai/rca/enhanced")


def test_every_analysis_route_is_documented_with_its_body() -> None:
    paths = openapi_document()["paths"]
    assert {route.path for route in rca.ROUTES} <= set(paths)
    for path in (*rca.PATHS, *EXPLAINED):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {key for shape in body["oneOf"] for key in shape["properties"]} == REQUEST_FIELDS | RCA_FIELDS
        assert {"200", "400", "404"} <= set(paths[path]["post"]["responses"])


def test_the_documented_response_keys_are_the_analysis_keys() -> None:
    from api.queries.correlation import CorrelationRows
    from api.rca.request import analyze_request

    schema = openapi_document()["components"]["schemas"]["RequestAnalysis"]
    found = analyze_request(CorrelationRows(correlation_id="x", trace_ids=[]))
    assert set(schema["properties"]) == set(schema["required"]) == set(found)
