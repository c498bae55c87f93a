"""Schemathesis against /openapi.json on the ASGI app over real rows: no server error, and
every answer matches the documented status codes, content types and schemas.

Schemathesis' pytest loaders (``from_fixture``) need pytest internals that pytest 9 removed,
so each operation's Hypothesis strategy runs under ``@given`` inside an ordinary test."""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import insert_scenario, make_app

from sinks.warehouse import Warehouse

EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 25}  # per operation
CHECKS = {
    # Invalid input must still never be a 5xx; its 4xx need not match the 200 schemas.
    GenerationMode.NEGATIVE: [not_a_server_error, content_type_conformance],
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, content_type_conformance,
                              response_schema_conformance],
}


def run_operation(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS[mode])

    check()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_the_api_keeps_its_openapi_promises(warehouse: Warehouse, mode: GenerationMode) -> None:
    insert_scenario(warehouse)
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(warehouse))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 33
    for operation in operations:
        if operation.path == "/api/v1/alerts/stream":
            continue  # an open-ended event stream; tests/integration/test_alerts_api.py drives it

        raw = operation.definition.raw
        if mode == GenerationMode.NEGATIVE and not raw.get("parameters") and "requestBody" not in raw:
            continue  # nothing to make invalid
        run_operation(operation, mode)
