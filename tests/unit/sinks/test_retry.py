"""Warehouse calls retried while ClickHouse is unavailable, and only then."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from core.errors import (
    ConfigError,
    RowsRefusedError,
    WarehouseError,
    WarehouseUnavailableError,
)
from sinks.retry import Backoff, retry_warehouse
from sinks.warehouse import failure

FAST = Backoff(0.001, 0.002)


def caller(failures: list[Exception]) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "rows"

    return calls, call


@pytest.mark.asyncio
async def test_unavailable_is_retried_until_the_call_succeeds() -> None:
    calls, call = caller([WarehouseUnavailableError("down"), WarehouseUnavailableError("still down")])
    retried: list[WarehouseError] = []
    assert await retry_warehouse(call, "test", FAST, on_retry=retried.append) == "rows"
    assert len(calls) == 3 and len(retried) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(("error", "stopping"), [(WarehouseError("no such table"), False),
                                                 (RowsRefusedError("bad value"), False),
                                                 (WarehouseUnavailableError("down"), True)],
                         ids=["permanent", "rows-refused", "stopping"])
async def test_a_permanent_error_or_a_stop_is_raised_at_once(error: Exception, stopping: bool) -> None:
    calls, call = caller([error])
    with pytest.raises(type(error)):
        await retry_warehouse(call, "test", FAST, lambda: stopping)
    assert len(calls) == 1


def test_a_backoff_doubles_up_to_its_cap_and_refuses_an_upside_down_range() -> None:
    backoff = Backoff(0.2, 0.5)
    assert [backoff.after(0.2), backoff.after(0.4)] == [0.4, 0.5]
    with pytest.raises(ConfigError, match="retry_initial_s"):
        Backoff(1.0, 0.5)


@pytest.mark.parametrize(("message", "inserting", "kind"), [
    ("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)", True, WarehouseUnavailableError),
    ("Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)", False, WarehouseUnavailableError),
    ("Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)", True, RowsRefusedError),
    ("Code: 27. DB::Exception: Cannot parse input. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)", False, WarehouseError),
    ("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)", True, WarehouseError),
], ids=["too-many-parts", "memory", "bad-data-insert", "bad-data-query", "unknown-table"])
def test_a_failure_message_says_whether_retrying_helps(message: str, inserting: bool, kind: type) -> None:
    error = failure(message, inserting=inserting)
    assert type(error) is kind and str(error) == message
