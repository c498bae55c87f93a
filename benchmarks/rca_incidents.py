"""Incident root-cause ranking on injected incidents, printed as JSON: AC@1, AC@3 and Avg@5 of
every method (api/rca/incident.py) over 20 incidents on the demo topology (each of the five
services in turn slow by 80 or 300 ms, or failing 15 % or 50 % of its requests), each
followed by a recovery period. Everything is real: the SDK exporters, the gateway, a local
Kafka broker, the worker (enrich, sink, score) and chDB; the demo fast-forwards a
backdated clock (``run_demo(speedup=...)``), so the run takes minutes, not a quarter hour.

DoWhy's gcm anomaly attribution is measured too when ``dowhy`` imports (it is not a
dependency of the product; see ``dowhy_ranker``); otherwise the output says why not.

    python benchmarks/rca_incidents.py [--repeats 1] [--seed 7] [--incidents N]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.rca.incident import DEFAULT_METHOD  # noqa: E402
from api.rca.incident_evidence import IncidentData  # noqa: E402
from core.settings import ClickHouseSettings  # noqa: E402
from pipeline.local_broker import LocalKafkaBroker  # noqa: E402
from sinks.backend import open_warehouse  # noqa: E402
from sinks.migrations import migrate  # noqa: E402
from tests.support.builders import settings_for  # noqa: E402
from tests.support.incidents import CONFIG, RATE, SPEEDUP, evaluate, incident_plan, inject  # noqa: E402


def dowhy_ranker() -> tuple[Callable[[IncidentData], list[str]] | None, str]:
    """DoWhy gcm: an invertible structural causal model over the call graph (a callee's
    anomaly score causes its callers'), fitted on the windows before the incident; each
    service's attribution to the entry service's anomaly in the incident's windows ranks it."""
    try:
        import networkx as nx
        import numpy as np
        import pandas as pd
        from dowhy import gcm
    except ImportError as exc:
        return None, f"dowhy does not import here ({exc}); install it to measure it"

    def rank(data: IncidentData) -> list[str]:
        graph = data.graph()
        causal: nx.DiGraph[str] = nx.DiGraph([(callee, caller) for caller, callee in graph.edges])
        if not nx.is_directed_acyclic_graph(causal) or len(causal) < 2:
            return []
        cols = sorted(causal)

        def frame(windows: Any) -> pd.DataFrame:
            table: dict[int, dict[str, float]] = {}
            for a in windows:
                table.setdefault(a.start_ns, {})[a.service] = a.score
            return pd.DataFrame([{c: row.get(c, 0.0) for c in cols} for row in table.values()], columns=cols)

        history, now = frame(data.history), frame(data.anomalies)
        if len(history) < 10 or now.empty:
            return []
        history += np.random.default_rng(0).normal(0, 1e-3, history.shape)  # scores of 0 only: no variance
        target = max((s for s in causal if causal.out_degree(s) == 0), key=lambda s: float(now[s].max()))
        scm = gcm.InvertibleStructuralCausalModel(causal)
        gcm.auto.assign_causal_mechanisms(scm, history, quality=gcm.auto.AssignmentQuality.GOOD)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gcm.fit(scm, history)
            worst = now.loc[[now[target].idxmax()]]
            scores = gcm.attribute_anomalies(scm, target, anomaly_samples=worst, num_distribution_samples=500)
        return sorted(scores, key=lambda s: -float(scores[s][0]))

    return rank, ""


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = incident_plan(repeats=args.repeats)[:args.incidents]
    ranker, dowhy_note = dowhy_ranker()
    with tempfile.TemporaryDirectory() as tmp, LocalKafkaBroker(Path(tmp) / "kafka") as broker:
        settings = settings_for("bench", Path(tmp), "default")
        wh = open_warehouse(ClickHouseSettings(), Path(tmp))
        migrate(wh, settings.clickhouse)
        injected = await inject(settings, broker.bootstrap, wh, "bench-rca", plan, seed=args.seed)
        began = time.monotonic()
        figures = await evaluate(wh, injected, {"dowhy_gcm": ranker} if ranker else None)
        evaluated_s = time.monotonic() - began
    methods = figures["methods"]
    if not ranker:
        methods["dowhy_gcm"] = {"AC@1": None, "AC@3": None, "Avg@5": None, "not_measured": dowhy_note}
    return {
        "benchmark": "rca_incidents", "incidents": len(plan), "chosen_method": DEFAULT_METHOD,
        "window_s": CONFIG.window_s, "rate_flows_per_simulated_s": RATE, "speedup": SPEEDUP,
        "spans_sent": injected.spans_sent, "spans_not_sent": injected.spans_not_sent,
        "pipeline_s": round(injected.seconds, 1), "stored": injected.stored, "evaluation_s": round(evaluated_s, 1),
        "methods": methods, "per_incident_rank": figures["incidents"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="times the 20 incidents are injected")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--incidents", type=int, default=None, help="only the first N incidents (a quick check)")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
