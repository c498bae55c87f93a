"""Consumer lag per partition, read from the Faust app's monitor when Prometheus scrapes."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ConsumerLagCollector(Collector):
    """``ollystack_consumer_lag_records{topic, partition}``: the partition's end offset (as
    last fetched) less the worker's committed offset, for every partition this worker has
    fetched from and committed on.

    Computed at scrape time from the monitor Faust keeps anyway (its consumer reports end
    offsets and commits to it), so the hot path pays nothing for it."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ollystack_consumer_lag_records",
                                   "records of a partition not yet committed by this worker",
                                   labels=["topic", "partition"])
        monitor = self._app.monitor
        ends, committed = dict(monitor.tp_end_offsets), dict(monitor.tp_committed_offsets)
        for tp, end in sorted(ends.items()):
            if tp in committed:
                family.add_metric([tp.topic, str(tp.partition)], max(0, end - committed[tp]))
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting: registering must not read the monitor.
        yield GaugeMetricFamily("ollystack_consumer_lag_records", "", labels=["topic", "partition"])
