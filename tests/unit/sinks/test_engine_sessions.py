"""The chDB engine's sessions: the ingest stage decodes on a session of its own beside the
warehouse's, both on one folder, and the two run statements at the same time."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from sinks.backend import chdb_folder, open_engine
from sinks.engine import Engine
from sinks.warehouse import Warehouse


def test_the_decoding_session_is_its_own_on_the_warehouses_folder(warehouse: Warehouse, chdb_dir: Path) -> None:
    decoding = open_engine(warehouse, chdb_dir)
    main = Engine.open(chdb_folder(chdb_dir))
    assert decoding is not main and decoding.path == main.path
    assert open_engine(warehouse, chdb_dir) is decoding  # one per process, shared
    assert Engine.open(chdb_folder(chdb_dir), "main") is main
    # One server: a table written through one session is read through the other.
    decoding.run(f"CREATE TABLE {warehouse.database}.shared (n UInt8) ENGINE = Memory")
    decoding.run(f"INSERT INTO {warehouse.database}.shared VALUES (7)")
    assert main.arrow(f"SELECT n FROM {warehouse.database}.shared").to_pylist() == [{"n": 7}]


def test_two_sessions_run_statements_side_by_side(warehouse: Warehouse, chdb_dir: Path, unique: str) -> None:
    decoding, main = open_engine(warehouse, chdb_dir), Engine.open(chdb_folder(chdb_dir))
    # The main session sleeps in a statement for up to 6 s; the decoding session must see
    # it running. Were the sessions one, its look would wait for the statement to end.
    marker = f"ollystack_{unique}"
    slow = threading.Thread(target=main.arrow, args=(
        f"SELECT sleepEachRow(0.2) AS {marker} FROM numbers(30) SETTINGS max_block_size = 1",))
    slow.start()
    seen = 0
    deadline = time.monotonic() + 30
    try:
        while not seen and slow.is_alive() and time.monotonic() < deadline:
            seen = decoding.arrow(
                "SELECT count() AS n FROM system.processes "
                "WHERE query LIKE {m:String} AND query NOT LIKE '%system.processes%'",
                {"m": f"%{marker}%"}).to_pylist()[0]["n"]
    finally:
        slow.join(timeout=60)
    assert seen == 1, "the decoding session never saw the main session's statement running"
