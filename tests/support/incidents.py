"""Injected incidents on the demo topology through the real gateway, broker, worker and chDB,
and how well each ranking method names the injected service (benchmarks/rca_incidents.py
and tests/integration/test_rca_incidents.py share it)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.score.config import ScoreConfig
from api.params import TimeRange
from api.queries.scope import QueryScope
from api.rca.incident import METHODS, rank
from api.rca.incident_evidence import IncidentData
from api.rca.incident_load import load_incident
from core.settings import Settings
from pipeline.demo import SERVICES, Faults, run_demo
from sinks.warehouse import Warehouse
from tests.support.builders import with_stage
from tests.support.pipeline import running_pipeline

NS_PER_S = 1_000_000_000
# Windows of simulated time: the demo fast-forwards a backdated clock, so 20 incidents take
# a minute or two of real time instead of a quarter of an hour.
CONFIG = ScoreConfig(window_s=5, lateness_s=3.0, idle_partition_s=10.0, history_windows=20, min_history_windows=6,
                     min_spans=10, api_url="http://olly.test:8080")
RATE = 10.0  # flows per simulated second: 50 a window
SPEEDUP = 15.0
WARMUP_WINDOWS, INCIDENT_WINDOWS, RECOVERY_WINDOWS = 10, 3, 6
# Each service in turn slow or failing, two intensities each: 20 incidents. Services alternate
# so no two incidents in a row fault the same one.
INTENSITIES = {"slow": (80.0, 300.0), "fail": (0.15, 0.5)}


@dataclass(frozen=True)
class Incident:
    service: str
    kind: str  # slow | fail
    intensity: float  # extra ms, or failure probability
    after_s: float  # simulated seconds into the run
    for_s: float

    @property
    def faults(self) -> Faults:
        if self.kind == "slow":
            return Faults(slow=frozenset({self.service}), slow_ms={self.service: self.intensity})
        return Faults(fail={self.service: self.intensity})

    @property
    def name(self) -> str:
        return f"{self.service} {self.kind} {self.intensity:g}"


def incident_plan(window_s: int = CONFIG.window_s, repeats: int = 1) -> list[Incident]:
    """Warm-up, then each incident followed by a recovery period (so windows do not bleed)."""
    incident_s, recovery_s = INCIDENT_WINDOWS * window_s, RECOVERY_WINDOWS * window_s
    at, out = float(WARMUP_WINDOWS * window_s), []
    for _ in range(repeats):
        for kind, levels in INTENSITIES.items():
            for level in levels:
                for service in SERVICES:
                    out.append(Incident(service, kind, level, at, incident_s))
                    at += incident_s + recovery_s
    return out


def schedule_of(plan: Sequence[Incident]) -> Callable[[float], Faults]:
    def faults_at(elapsed_s: float) -> Faults:
        for incident in plan:
            if incident.after_s <= elapsed_s < incident.after_s + incident.for_s:
                return incident.faults
        return Faults()
    return faults_at


@dataclass(frozen=True)
class InjectedRun:
    plan: list[Incident]
    stamped_from_ns: int  # the simulated clock's zero
    spans_sent: int
    spans_not_sent: int
    seconds: float
    stored: dict[str, Any]  # what the pipeline had stored when the wait ended

    def window(self, incident: Incident) -> TimeRange:
        start = self.stamped_from_ns + int(incident.after_s * NS_PER_S)
        return TimeRange(start, start + int(incident.for_s * NS_PER_S))


async def inject(settings: Settings, bootstrap: str, warehouse: Warehouse, app_id: str,
                 plan: list[Incident], seed: int = 7, rate: float = RATE) -> InjectedRun:
    """Run the demo with ``plan`` (``rate`` flows per simulated second) through a gateway and
    a worker with the score stage, then wait until the score stage closed the last window
    and the sink stored every span."""
    settings = with_stage(settings, score=CONFIG)
    last = plan[-1]
    duration_s = last.after_s + last.for_s + RECOVERY_WINDOWS * CONFIG.window_s
    began = time.monotonic()
    async with running_pipeline(settings, bootstrap, warehouse, app_id) as gateway:
        stamped_from_ns = time.time_ns() - int(duration_s * NS_PER_S)
        result = await asyncio.to_thread(
            run_demo, f"http://127.0.0.1:{gateway.grpc_port}", f"http://127.0.0.1:{gateway.http_port}", "grpc",
            rate, duration_s, schedule_of(plan), seed=seed, speedup=SPEEDUP, stamped_from_ns=stamped_from_ns)
        last_window = (stamped_from_ns + int((last.after_s + last.for_s) * NS_PER_S)) // CONFIG.window_ns + 1
        generated_s = time.monotonic() - began
        db = warehouse.database
        deadline = time.monotonic() + 400
        while True:
            stored = (await asyncio.to_thread(
                warehouse.query, f"SELECT toUnixTimestamp64Nano(max(Timestamp)) AS t, countIf(Warming = 0) AS scored, "
                f"(SELECT count() FROM {db}.otel_traces) AS spans FROM {db}.ollystack_anomalies"))[0]
            done = int(stored["t"]) // CONFIG.window_ns >= last_window and int(stored["spans"]) >= result.spans
            if done or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
    return InjectedRun(plan, stamped_from_ns, result.spans, result.spans_not_sent, time.monotonic() - began,
                       {"generated_s": round(generated_s, 1), "complete": done, "spans_stored": int(stored["spans"]),
                        "scored_windows": int(stored["scored"]),
                        "windows_behind": max(0, last_window - int(stored["t"]) // CONFIG.window_ns)})


async def incident_data(warehouse: Warehouse, run: InjectedRun, incident: Incident,
                        history_s: float = 0.0) -> IncidentData:
    window = run.window(incident)
    history = TimeRange(window.start_ns - int(history_s * NS_PER_S), window.start_ns) if history_s else None
    return await load_incident(warehouse, QueryScope(warehouse.database), window, CONFIG.threshold, history)


def accuracy(ranks: Iterable[int | None], k_max: int = 5) -> dict[str, float]:
    """AC@1, AC@3 and Avg@5 (the mean of AC@1..AC@5) of the injected service's ranks (1-based; None: absent)."""
    ranks = list(ranks)
    ac = {k: sum(1 for r in ranks if r is not None and r <= k) / len(ranks) for k in range(1, k_max + 1)}
    return {"AC@1": round(ac[1], 4), "AC@3": round(ac[3], 4), "Avg@5": round(sum(ac.values()) / k_max, 4)}


def rank_of(service: str, ranked: Sequence[str]) -> int | None:
    return ranked.index(service) + 1 if service in ranked else None


async def evaluate(warehouse: Warehouse, run: InjectedRun, extra: dict[str, Callable[[IncidentData], list[str]]]
                   | None = None) -> dict[str, Any]:
    """Every method's rank of the injected service in every incident, and its accuracy."""
    methods: dict[str, Callable[[IncidentData], list[str]]] = {
        m: (lambda data, m=m: [c.service for c in rank(data, m)]) for m in METHODS}  # type: ignore[misc]
    methods.update(extra or {})
    ranks: dict[str, list[int | None]] = {m: [] for m in methods}
    seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
    detail = []
    for incident in run.plan:
        data = await incident_data(warehouse, run, incident, history_s=300.0)
        anomalous = sorted({a.service for a in data.anomalies if a.score >= CONFIG.threshold})
        row: dict[str, Any] = {"incident": incident.name, "anomalous": anomalous}
        for name, method in methods.items():
            began = time.perf_counter()
            ranked = method(data)
            seconds[name] += time.perf_counter() - began
            ranks[name].append(rank_of(incident.service, ranked))
            row[name] = ranks[name][-1]
        detail.append(row)
    return {"methods": {m: {**accuracy(r), "seconds_per_incident": round(seconds[m] / len(run.plan), 4)}
                        for m, r in ranks.items()},
            "incidents": detail}

