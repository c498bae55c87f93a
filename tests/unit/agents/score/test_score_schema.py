"""The alert JSON: Alertmanager's fields and fingerprint, and reading it back."""
from __future__ import annotations

import orjson
import pytest

from core.errors import DecodeError
from schemas.alerts import (
    Alert,
    decode_alert,
    encode_alert,
    fingerprint,
    parse_rfc3339_ns,
    rfc3339_ns,
)

T = 1_763_856_010_123_000_000


@pytest.mark.parametrize("labels, expected", [
    ({}, 14695981039346656037),
    ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
], ids=["empty", "prometheus-reference"])
def test_fingerprint_is_prometheus_label_signature(labels: dict[str, str], expected: int) -> None:
    # The values of prometheus/common model/signature_test.go.
    assert int(fingerprint(labels), 16) == expected


def test_times_round_trip_in_rfc3339() -> None:
    assert rfc3339_ns(T) == "2025-11-23T00:00:10.123Z"
    assert parse_rfc3339_ns("2025-11-23T00:00:10.123Z") == T
    assert parse_rfc3339_ns("0001-01-01T00:00:00Z") is None
    with pytest.raises(DecodeError):
        parse_rfc3339_ns("yesterday")


def alert(**changes: object) -> Alert:
    fields = dict(labels={"alertname": "OllyStackAnomaly", "service": "checkout"},
                  annotations={"summary": "s", "description": "d", "score": "0.8", "correlation_id": "req-1"},
                  starts_at_ns=T,
                  generator_url="http://olly/api/v1/anomalies", score=0.8)
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def test_alert_json_round_trips_and_keeps_its_fingerprint() -> None:
    firing = alert()
    resolved = firing.resolve(T + 60_000_000_000, T + 60_000_000_000)
    for a in (firing, resolved):
        back = decode_alert(encode_alert(a))
        assert (back.labels, back.status, back.ends_at_ns, back.updated_at_ns, back.fingerprint) == \
            (a.labels, a.status, a.ends_at_ns, a.updated_at_ns or a.starts_at_ns, a.fingerprint)
    assert set(firing.to_json()) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
                                     "status", "updatedAt"}
    assert "endsAt" not in firing.to_alertmanager() and "endsAt" in resolved.to_alertmanager()
    row = resolved.to_row()
    assert (row["Status"], row["ServiceName"], row["CorrelationId"], row["Predicted"]) == ("resolved", "checkout",
                                                                                         "req-1", 0)


@pytest.mark.parametrize("payload", [
    b"not json", b"{}", orjson.dumps({**alert().to_json(), "status": "maybe"}),
    orjson.dumps({**alert().to_json(), "fingerprint": "0" * 16}),
    orjson.dumps({**alert().to_json(), "labels": {"service": 1}}),
], ids=["not-json", "empty-object", "bad-status", "wrong-fingerprint", "non-string-label"])
def test_bad_alert_json_is_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_alert(payload)
