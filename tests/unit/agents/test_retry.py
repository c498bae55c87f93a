"""Warehouse reads retried while ClickHouse is unreachable, and only then."""
from __future__ import annotations

import pytest

from agents.retry import read_with_retry
from core.errors import WarehouseError, WarehouseUnavailableError


def reader(failures: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    async def read() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "rows"

    return calls, read


@pytest.mark.asyncio
async def test_unreachable_is_retried_until_the_read_succeeds() -> None:
    calls, read = reader([WarehouseUnavailableError("down"), WarehouseUnavailableError("still down")])
    assert await read_with_retry(read, "test", 0.001, 0.002, lambda: False) == "rows"  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("error, stopping", [(WarehouseError("no such table"), False),
                                             (WarehouseUnavailableError("down"), True)],
                         ids=["permanent", "stopping"])
async def test_a_permanent_error_or_a_stop_is_raised_at_once(error: Exception, stopping: bool) -> None:
    calls, read = reader([error])
    with pytest.raises(WarehouseError):
        await read_with_retry(read, "test", 0.001, 0.002, lambda: stopping)  # type: ignore[arg-type]
    assert len(calls) == 1
