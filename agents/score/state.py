"""The score stage's durable state: recent windows and open alerts, read back from ClickHouse.

Why not Faust tables: see agents/ingest/state.py (recovery from the changelog stalled
after a SIGKILL). The anomaly rows the stage writes anyway hold every window's features
and whether the detector learned it, so replaying the last windows rebuilds each detector
exactly, and the alerts table says which alerts are open; nothing else needs a changelog."""
from __future__ import annotations

import logging
from typing import Any

from agents.score.config import ScoreConfig
from core.errors import DecodeError
from schemas.alerts import Alert, decode_alert
from schemas.tables import ALERTS_TABLE, ANOMALIES_TABLE
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)
_RESTORE_COLUMNS = (
    "toUnixTimestamp64Nano(Timestamp) AS TimestampNs, Tenant, toString(ServiceName) AS ServiceName, "
    "toString(SpanName) AS SpanName, Spans, Errors, P50Ms, P95Ms, Learned, AlertScore, AlertOperation, "
    "AlertReason, AlertCorrelationId, AlertTraceId, AlertDetail, AlertInhibitedBy, Callees"
)


def recent_windows(warehouse: Warehouse, config: ScoreConfig) -> list[dict[str, Any]]:
    """The stored windows (this window length) the stage needs, oldest first: the last
    restore_windows (detectors; at least history_windows + max_frozen_windows: alert
    states and the call graph) before the newest stored one, or
    predict_history_windows when predicted alerts are on (their series)."""
    table = f"{warehouse.database}.{ANOMALIES_TABLE}"
    newest = warehouse.query(
        f"SELECT toUnixTimestamp64Nano(max(Timestamp)) AS ts, count() AS n FROM {table} "
        "WHERE WindowSeconds = {w:UInt32}", {"w": config.window_s})
    if not newest or not int(newest[0]["n"]):
        return []
    windows = max(config.history_windows + config.max_frozen_windows, config.restore_windows)
    if config.predict:
        windows = max(windows, config.predict_history_windows)
    since = int(newest[0]["ts"]) - windows * config.window_ns
    rows = warehouse.query(
        f"SELECT {_RESTORE_COLUMNS} FROM {table} FINAL WHERE WindowSeconds = {{w:UInt32}} "
        "AND Timestamp > fromUnixTimestamp64Nano({since:Int64}) "
        "ORDER BY TimestampNs, Tenant, ServiceName, SpanName",
        {"w": config.window_s, "since": since})
    for row in rows:
        row["Timestamp"] = int(row.pop("TimestampNs"))
    return rows


def open_alerts(warehouse: Warehouse) -> list[Alert]:
    """Anomaly and predicted alerts whose latest message is "firing" (a resolved one wins a tie)."""
    rows = warehouse.query(
        "SELECT argMax(Payload, (UpdatedAt, Status = 'resolved')) AS payload, "
        "argMax(Status, (UpdatedAt, Status = 'resolved')) AS status "
        f"FROM {warehouse.database}.{ALERTS_TABLE} FINAL "
        "GROUP BY Fingerprint HAVING status = 'firing'")
    alerts = []
    for row in rows:
        try:
            alerts.append(decode_alert(row["payload"]))
        except DecodeError as exc:  # a row we wrote ourselves; skip rather than refuse to start
            log.warning("stored alert unreadable; ignored", extra={"error": str(exc)})
    return alerts


def load_state(warehouse: Warehouse, config: ScoreConfig) -> tuple[list[dict[str, Any]], list[Alert]]:
    """Recent windows and open alerts. Blocking: call it off the loop. Raises WarehouseError."""
    return recent_windows(warehouse, config), open_alerts(warehouse)

