"""The NLQ and chat routes are documented with the bodies they accept and the errors they answer."""
from __future__ import annotations

from api.openapi import openapi_document
from api.openapi_nlq import enhanced_paths
from api.routes import nlq
from api.routes.explain import enhanced_routes


def _post(path: str) -> dict[str, object]:
    operation: dict[str, object] = openapi_document()["paths"][path]["post"]
    return operation


def test_every_nlq_route_is_documented_with_its_model_errors() -> None:
    for route in nlq.ROUTES:
        responses = _post(route.path)["responses"]
        assert isinstance(responses, dict)
        assert {"200", "400", "401", "500", "502", "503", "504"} <= set(responses), route.path


def test_the_nlq_body_is_a_question_or_sql_and_nothing_else() -> None:
    body = _post("/api/v1/nlq")["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[index]
    assert [(o["required"], o["additionalProperties"]) for o in body["oneOf"]] == [(["question"], False),
                                                                                   (["sql"], False)]


def test_the_enhanced_paths_match_the_routes_the_lead_adds() -> None:
    async def analyze(request: object, body: dict[str, object]) -> dict[str, object]:
        return {}

    paths = enhanced_paths({"type": "object"}, {"type": "object"})
    assert [r.path for r in enhanced_routes(analyze)] == list(paths)
