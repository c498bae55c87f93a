"""The Faust app: one per worker process, configured from Settings."""
from __future__ import annotations

from typing import Any

import faust

from core.settings import Settings


def create_app(settings: Settings, bootstrap: str, app_id: str = "ollystack", **overrides: Any) -> faust.App:
    """A Faust app on ``bootstrap`` whose agents are registered by the stages that use it.

    Tables live in memory and are rebuilt from their changelog topics at start, so a
    worker keeps no state on local disk that Kafka does not also hold. The producer
    waits for every in-sync replica and is idempotent, so nothing an agent forwarded
    is lost or doubled by a producer retry."""
    conf: dict[str, Any] = dict(
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.kafka.max_message_bytes,
        # An enriched record of one 512-span request is ~0.5 MB of JSON: Faust's 1 MB
        # per-partition fetch would bring one or two records per round trip.
        consumer_max_fetch_size=settings.kafka.max_message_bytes,
        producer_compression_type=None if settings.kafka.compression == "none" else settings.kafka.compression,
        broker_client_id=settings.kafka.client_id,
        # One worker per machine for `up`; rebalances should not wait for stragglers.
        broker_rebalance_timeout=60.0,
        # A worker killed outright is noticed by the group after this long, not Faust's 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        stream_wait_empty=False,
    )
    conf.update(overrides)
    return faust.App(app_id, **conf)
