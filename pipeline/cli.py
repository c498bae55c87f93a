"""The `ollystack` command line: one subcommand per role or operator task."""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from core.errors import ConfigError, OllyStackError
from core.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.up import run_up

    return asyncio.run(run_up(settings, roles=("gateway", "worker", "api")))


def _role(role: str) -> Handler:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from pipeline.up import run_up

        return asyncio.run(run_up(settings, roles=(role,)))

    return run


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.backend import open_warehouse
    from sinks.migrations import migrate

    wh = open_warehouse(settings.clickhouse, settings.data_dir)
    try:
        applied = migrate(wh, settings.clickhouse)
    finally:
        wh.close()
    print("\n".join(f"applied {name}" for name in applied) or "schema is up to date")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.topics import align_topic_configs, describe_topics, ensure_topics, topic_specs

    if not settings.kafka.bootstrap:
        raise ConfigError("`ollystack topics` needs OLLYSTACK_KAFKA_BOOTSTRAP (the broker to talk to)")
    if args.action == "create":
        specs = topic_specs(settings.topics)
        created = asyncio.run(ensure_topics(settings.kafka.bootstrap, specs))
        print("\n".join(f"created {name}" for name in created) or "all topics exist")
        # The operator's own command: it applies the configured topic configs to topics that
        # exist already (a start only warns, see pipeline/up.py).
        for d in asyncio.run(align_topic_configs(settings.kafka.bootstrap, specs, alter=True)):
            print(f"altered {d.topic} {d.name}: {d.broker_value} -> {d.wanted}")
    else:
        for name, partitions in asyncio.run(describe_topics(settings.kafka.bootstrap)).items():
            print(f"{name}\t{partitions}")
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.replay import parse_position, run_replay
    from pipeline.up import kafka_bootstrap
    from sinks.backend import open_warehouse
    from sinks.migrations import migrate

    start = parse_position(args.start, "--from")
    stop = parse_position(args.stop, "--to") if args.stop else None
    if not settings.kafka.bootstrap:
        raise ConfigError("`ollystack replay` needs OLLYSTACK_KAFKA_BOOTSTRAP (the broker holding the raw topics)")
    wh = open_warehouse(settings.clickhouse, settings.data_dir)
    try:
        migrate(wh, settings.clickhouse)

        async def go() -> dict[str, int]:
            async with kafka_bootstrap(settings) as bootstrap:
                return await run_replay(settings, wh, bootstrap, args.signal, start, stop,
                                        group_id=args.group, progress=not args.quiet)

        totals = asyncio.run(go())
    finally:
        wh.close()
    print(f"replayed {totals['records']} records, {totals['rows']} rows; {totals['dead']} undecodable skipped")
    return 0


def _correlate(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli import correlate_main

    return correlate_main(settings, args.correlation_id, args.json)


def _rca(args: argparse.Namespace, settings: Settings) -> int:
    from api.rca_cli import rca_main

    return rca_main(settings, args.correlation_id, args.trace_id, args.json, service=args.service, since=args.since,
                    alert=args.alert)


def _alerts_tail(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.alerts_tail import alerts_tail_main

    if not settings.kafka.bootstrap:
        raise ConfigError("`ollystack alerts tail` needs OLLYSTACK_KAFKA_BOOTSTRAP (the broker with the alerts topic)")
    return alerts_tail_main(settings, settings.kafka.bootstrap, args.from_beginning, args.max, args.format)


def _config(args: argparse.Namespace, settings: Settings) -> int:
    print(orjson.dumps(settings.redacted(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.demo import demo_main

    return demo_main(args.demo_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ollystack", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (OLLYSTACK_* variables override it)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("up", help="every role in one process on chDB, with a local Kafka if none is set"
                   ).set_defaults(run=_up)
    for role in ("gateway", "worker", "api"):
        sub.add_parser(role, help=f"run the {role} role alone").set_defaults(run=_role(role))
    sub.add_parser("migrate", help="apply pending ClickHouse migrations").set_defaults(run=_migrate)
    sub.add_parser("config", help="print the settings in effect (secrets redacted) as JSON").set_defaults(run=_config)
    topics = sub.add_parser("topics", help="create or list the Kafka topics")
    topics.add_argument("action", choices=("create", "list"))
    topics.set_defaults(run=_topics)
    replay = sub.add_parser("replay", help="re-read raw topics through enrich and sink")
    replay.add_argument("--signal", required=True, choices=("traces", "logs", "metrics"))
    replay.add_argument("--from", dest="start", required=True, metavar="OFFSET|TIME",
                        help="an offset (every partition) or an ISO-8601 time")
    replay.add_argument("--to", dest="stop", metavar="OFFSET|TIME", help="where to stop (default: the end now)")
    replay.add_argument("--group", help="consumer group (default ollystack-replay-SIGNAL)")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(run=_replay)
    alerts = sub.add_parser("alerts", help="alerts topic tools")
    alerts.add_argument("action", choices=("tail",))
    alerts.add_argument("--from-beginning", action="store_true", help="print the alerts already on the topic too")
    alerts.add_argument("--max", type=int, metavar="N", help="stop after N alerts")
    alerts.add_argument("--format", choices=("json", "table"), default="json")
    alerts.set_defaults(run=_alerts_tail)
    correlate = sub.add_parser("correlate", help="print everything known under a correlation ID")
    correlate.add_argument("correlation_id")
    correlate.add_argument("--json", action="store_true", help="print JSON instead of tables")
    correlate.set_defaults(run=_correlate)
    rca = sub.add_parser("rca", help="why a request was slow or failed (critical path, error origin), "
                         "or which service caused an incident")
    rca.add_argument("correlation_id", nargs="?", help="the request's correlation ID")
    rca.add_argument("--trace-id", help="analyse this trace instead (32 hex digits)")
    rca.add_argument("--service", help="an incident: the service whose symptoms to explain")
    rca.add_argument("--since", help="an incident: the window back from now, such as 15m, 2h (default 15m)")
    rca.add_argument("--alert", metavar="FINGERPRINT", help="an incident: the window and service of this alert")
    rca.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    rca.set_defaults(run=_rca)
    # The demo has its own options (pipeline/demo.py); everything after `demo` goes to it.
    sub.add_parser("demo", help="sample traffic through the OpenTelemetry SDK (demo --help)",
                   add_help=False).set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ollystack` script. Exit 0 on success, 2 on an OllyStack error
    (bad setting, unreachable broker ...), with a one-line message on stderr."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "demo":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.demo_args = extra
    try:
        settings = load_settings(args.config)
        from pipeline.logs import configure_logging

        configure_logging(settings.log_level, settings.log_format)
        return int(args.run(args, settings))
    except OllyStackError as exc:
        print(f"ollystack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
