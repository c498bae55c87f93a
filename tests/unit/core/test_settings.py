"""Settings: defaults, environment and file sources, and errors that name the setting."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import load_settings


def test_defaults_match_the_documented_ports_and_folders() -> None:
    s = load_settings(environ={})
    assert (s.otlp.grpc_port, s.otlp.http_port, s.api.port) == (4317, 4318, 8080)
    assert s.worker.metrics_port == 9464
    assert s.host == "127.0.0.1"
    assert s.data_dir == Path(".ollystack")
    assert s.kafka.bootstrap == "" and s.clickhouse.url.get_secret_value() == ""
    assert (s.topics.spans, s.topics.logs, s.topics.metrics) == ("otlp_spans", "otlp_logs", "otlp_metrics")


def test_environment_variables_map_to_nested_sections() -> None:
    s = load_settings(environ={
        "OLLYSTACK_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "OLLYSTACK_CLICKHOUSE_URL": "clickhouse://u:p@h:9000/db",
        "OLLYSTACK_DATA_DIR": "/var/lib/olly",
        "OLLYSTACK_OTLP_GRPC_PORT": "14317",
        "OLLYSTACK_API_PORT": "9999",
        "OLLYSTACK_WORKER_METRICS_PORT": "19464",
        "OLLYSTACK_HOST": "0.0.0.0",  # noqa: S104 - a settings value, nothing binds it
        "OLLYSTACK_TOPICS_PARTITIONS": "12",
        "OLLYSTACK_TOPICS_SPANS": "my_spans",
        "OLLYSTACK_OTLP_AUTH_TOKENS": "tok1=acme,tok2=globex",
        "OLLYSTACK_ROLLUPS_INTERVAL_S": "2.5",
        "UNRELATED": "ignored",
    })
    assert (s.rollups.interval_s, s.rollups.max_minutes, s.rollups.margin_s) == (2.5, 30, 5.0)
    assert s.kafka.bootstrap == "k1:9092,k2:9092"
    assert s.data_dir == Path("/var/lib/olly")
    assert s.otlp.grpc_port == 14317 and s.api.port == 9999 and s.worker.metrics_port == 19464 and s.host == "0.0.0.0"  # noqa: S104 - a settings value, nothing binds it
    assert s.topics.partitions == 12 and s.topics.spans == "my_spans"
    assert [(t.token.get_secret_value(), t.tenant) for t in s.otlp.auth_tokens] == [("tok1", "acme"),
                                                                                     ("tok2", "globex")]


def test_secrets_are_redacted_when_printed() -> None:
    s = load_settings(environ={"OLLYSTACK_CLICKHOUSE_URL": "clickhouse://u:hunter2@h:9000/db",
                               "OLLYSTACK_OTLP_AUTH_TOKENS": "ingest-hunter2=acme",
                               "OLLYSTACK_API_KEYS": "read-hunter2=acme:admin"})
    for shown in (str(s.redacted()), repr(s), str(s), str(s.model_dump(mode="json"))):
        assert "hunter2" not in shown
    assert s.redacted()["api"]["keys"] == [{"token": "**********", "tenant": "acme", "role": "admin"}]


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "olly.toml"
    cfg.write_text('host = "10.0.0.1"\n[otlp]\ngrpc_port = 5317\nhttp_port = 5318\n')
    s = load_settings(cfg, environ={"OLLYSTACK_OTLP_HTTP_PORT": "6318"})
    assert s.host == "10.0.0.1" and s.otlp.grpc_port == 5317 and s.otlp.http_port == 6318


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OLLYSTACK_OTLP_GRPC_PORT": "abc"}, "OLLYSTACK_OTLP_GRPC_PORT='abc'"),
        ({"OLLYSTACK_OTLP_HTTP_PORT": "70000"},
         "OLLYSTACK_OTLP_HTTP_PORT='70000': Input should be less than or equal to 65535"),
        ({"OLLYSTACK_API_PORT": "-1"}, "OLLYSTACK_API_PORT='-1'"),
        ({"OLLYSTACK_WORKER_METRICS_PORT": "65536"}, "OLLYSTACK_WORKER_METRICS_PORT='65536'"),
        ({"OLLYSTACK_TOPICS_PARTITIONS": "0"},
         "OLLYSTACK_TOPICS_PARTITIONS='0': Input should be greater than or equal to 1"),
        ({"OLLYSTACK_TOPICS_SPANS": "bad topic!"}, "OLLYSTACK_TOPICS_SPANS='bad topic!'"),
        ({"OLLYSTACK_LOG_LEVEL": "loud"},
         "OLLYSTACK_LOG_LEVEL='loud': Input should be 'debug', 'info', 'warning' or 'error'"),
        ({"OLLYSTACK_CLICKHOUSE_DATABASE": "x;drop"}, "OLLYSTACK_CLICKHOUSE_DATABASE='x;drop'"),
        ({"OLLYSTACK_KAFKA_MAX_MESSAGE_BYTES": "100"}, "OLLYSTACK_KAFKA_MAX_MESSAGE_BYTES='100'"),
        ({"OLLYSTACK_SINK_BATCH_MAX_ROWS": "0"}, "OLLYSTACK_SINK_BATCH_MAX_ROWS='0'"),
        ({"OLLYSTACK_ROLLUPS_INTERVAL_S": "0"},
         "OLLYSTACK_ROLLUPS_INTERVAL_S='0': Input should be greater than 0"),
        ({"OLLYSTACK_OTLP_AUTH_TOKENS": "no-equals-sign"}, "OLLYSTACK_OTLP_AUTH_TOKENS=<secret>"),
        ({"OLLYSTACK_KAFKA_BOOTSTRAPP": "x"}, "OLLYSTACK_KAFKA_BOOTSTRAPP: unknown setting"),
        ({"OLLYSTACK_NOPE": "x"}, "OLLYSTACK_NOPE: unknown setting"),
    ],
    ids=["port-not-int", "port-too-big", "port-negative", "worker-port-too-big", "zero-partitions", "illegal-topic",
         "log-level", "database-injection", "tiny-message-limit", "batch-rows", "rollup-interval", "tokens-format",
         "typo-in-section", "unknown"],
)
def test_a_bad_value_names_the_setting_the_value_and_the_rule(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert expected in str(info.value)


def test_a_missing_or_broken_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("host = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})


def test_settings_are_frozen() -> None:
    s = load_settings(environ={})
    with pytest.raises(ValidationError):
        s.otlp.grpc_port = 1  # type: ignore[misc]
