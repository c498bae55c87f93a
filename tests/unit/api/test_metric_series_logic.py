"""Quantiles from histogram buckets (PromQL's histogram_quantile), and the group_by and
filter parameters of the metric series route."""
from __future__ import annotations

import pytest

from api.params import ParamError, attribute_filters, attribute_keys
from api.presentation.series import bucket_quantile

BOUNDS = [10.0, 100.0, 1000.0]


@pytest.mark.parametrize(("q", "bounds", "counts", "expected"), [
    pytest.param(0.5, BOUNDS, [2, 4, 1, 1], 55.0, id="inside-a-bucket-linearly"),
    pytest.param(0.25, BOUNDS, [2, 4, 1, 1], 10.0, id="rank-at-a-bucket-edge"),
    pytest.param(0.1, BOUNDS, [4, 0, 0, 0], 1.0, id="first-bucket-starts-at-zero"),
    pytest.param(0.5, [-5.0, 0.0], [4, 0, 0], -5.0, id="first-bucket-at-or-below-zero-is-its-bound"),
    pytest.param(0.95, BOUNDS, [2, 4, 1, 1], 1000.0, id="overflow-bucket-is-the-highest-bound"),
    pytest.param(0.5, BOUNDS, [0, 0, 2, 0], 550.0, id="empty-buckets-are-skipped"),
    pytest.param(0.5, BOUNDS, [0, 0, 0, 0], None, id="no-observations"),
    pytest.param(0.5, [], [3], None, id="no-finite-bounds"),
    pytest.param(0.5, BOUNDS, [1, 2], None, id="counts-not-matching-bounds"),
])
def test_bucket_quantile(q: float, bounds: list[float], counts: list[int], expected: float | None) -> None:
    assert bucket_quantile(q, bounds, counts) == expected


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("service.name", ("service.name",), id="one"),
    pytest.param("http.route, k8s.pod.name", ("http.route", "k8s.pod.name"), id="several-with-space"),
])
def test_attribute_keys(value: str, expected: tuple[str, ...]) -> None:
    assert attribute_keys(value, "group_by", 5) == expected


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("a,b,c", "at most 2 keys", id="too-many"),
    pytest.param("a,a", "given twice", id="repeated"),
    pytest.param("x']", "is not an attribute key", id="quote"),
    pytest.param("", "is not an attribute key", id="empty"),
    pytest.param("-abc", "is not an attribute key", id="leading-dash"),
])
def test_attribute_keys_refused(value: str, message: str) -> None:
    with pytest.raises(ParamError, match=message) as info:
        attribute_keys(value, "group_by", 2)
    assert info.value.parameter == "group_by"


def test_attribute_filters() -> None:
    assert attribute_filters("service.name=api,http.route=/orders/{id}", "filter", 3) == {
        "service.name": "api", "http.route": "/orders/{id}"}


@pytest.mark.parametrize(("value", "message"), [
    pytest.param("route", "key=value", id="no-equals"),
    pytest.param("a=1,a=2", "given twice", id="repeated-key"),
    pytest.param("a=1,b=2,c=3,d=4", "at most 3", id="too-many"),
    pytest.param("a=x'; DROP TABLE t", "not allowed", id="sql-in-a-value"),
    pytest.param("a=", "has no value", id="empty-value"),
])
def test_attribute_filters_refused(value: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        attribute_filters(value, "filter", 3)
