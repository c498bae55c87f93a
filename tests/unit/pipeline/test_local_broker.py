"""The local broker refuses fast, with the way out, when Java or Maven is missing."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.errors import LocalBrokerError
from pipeline.local_broker import LocalKafkaBroker, cache_dir, kafka_version


def test_no_java_on_path_fails_fast_with_both_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    started = time.monotonic()
    with pytest.raises(LocalBrokerError) as info:
        LocalKafkaBroker(tmp_path / "kafka").start()
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "Java" in message and "not on PATH" in message
    assert "install it" in message and "OLLYSTACK_KAFKA_BOOTSTRAP" in message
    assert "\n" not in message


def test_named_java_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalBrokerError, match="Java"):
        LocalKafkaBroker(tmp_path / "kafka", java=str(tmp_path / "no-such-java")).start()


def test_jars_are_cached_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "ollystack" / f"kafka-{kafka_version()}"
    assert kafka_version().startswith("4.")
