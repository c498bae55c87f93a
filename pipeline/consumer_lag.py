"""Consumer lag per partition, read from the ingest sources and the Faust app's monitor when
Prometheus scrapes."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Lagging(Protocol):
    def lag(self) -> dict[Any, int]: ...


class ConsumerLagCollector(Collector):
    """``ollystack_consumer_lag_records{topic, partition}``: the partition's end offset (as
    last fetched) less the worker's committed offset, for every partition this worker has
    fetched from and committed on.

    Computed at scrape time: the raw topics' from the ingest sources, the others' from the
    monitor Faust keeps anyway (its consumer reports end offsets and commits to it), so the
    hot path pays nothing for it."""

    def __init__(self, app: Any, sources: Sequence[_Lagging] = ()) -> None:
        self._app, self._sources = app, sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ollystack_consumer_lag_records",
                                   "records of a partition not yet committed by this worker",
                                   labels=["topic", "partition"])
        monitor = self._app.monitor
        ends, committed = dict(monitor.tp_end_offsets), dict(monitor.tp_committed_offsets)
        lags = {(tp.topic, tp.partition): max(0, end - committed[tp]) for tp, end in ends.items() if tp in committed}
        for source in self._sources:
            lags.update({(tp.topic, tp.partition): lag for tp, lag in source.lag().items()})
        for (topic, partition), lag in sorted(lags.items()):
            family.add_metric([topic, str(partition)], lag)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting: registering must not read the monitor.
        yield GaugeMetricFamily("ollystack_consumer_lag_records", "", labels=["topic", "partition"])
