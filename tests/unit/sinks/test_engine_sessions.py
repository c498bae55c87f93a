"""The chDB engine's sessions: the ingest stage decodes on a session of its own beside the
warehouse's, both on one folder, and the two run statements at the same time; a process
after a killed one is not stopped by the staging tables it left."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

from agents.ingest.state import stored_states
from core.errors import WarehouseError
from sinks.backend import chdb_folder, decoding_reader, open_engine
from sinks.engine import STAGING_DATABASE, Engine
from sinks.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[3]


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


def test_trace_states_are_read_while_the_warehouse_session_is_busy(warehouse: Warehouse, chdb_dir: Path,
                                                                     unique: str) -> None:
    """The ingest stage reads trace states while the batch before is inserted: through the
    decoding session, or the lookup waits for the insert (decoding_reader)."""
    main = Engine.open(chdb_folder(chdb_dir))
    reader = decoding_reader(warehouse)
    assert reader.database == warehouse.database
    marker = f"ollystack_{unique}"
    busy = f"%{marker}%"
    slow = threading.Thread(target=_quietly, args=(main, f"SELECT sleepEachRow(0.2) AS {marker} FROM numbers(300) "
                                                         "SETTINGS max_block_size = 1"))
    slow.start()
    try:
        _wait_running(reader, busy, slow)
        assert stored_states(reader, {("", "a" * 32)}) == {}
        assert slow.is_alive(), "the lookup waited for the main session's statement to end"
    finally:
        reader.execute("KILL QUERY WHERE query LIKE {m:String} AND query NOT LIKE '%system.processes%' SYNC",
                       {"m": busy})
        slow.join(timeout=60)


def _quietly(engine: Engine, sql: str) -> None:
    with contextlib.suppress(WarehouseError):  # killed at the test's end
        engine.arrow(sql)


def _wait_running(reader: Warehouse, pattern: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        rows = reader.query("SELECT count() AS n FROM system.processes "
                            "WHERE query LIKE {m:String} AND query NOT LIKE '%system.processes%'", {"m": pattern})
        if int(rows[0]["n"]):
            return
    raise AssertionError("the main session's statement was never seen running")


_RESTARTED = """
import sys
from pathlib import Path
from sinks.engine import Engine
from agents.ingest.staging import StagedBatch
engine = Engine.open(Path(sys.argv[1]))
with StagedBatch(engine, "traces", "") as batch:
    name = batch.lookup("traces", "k String, v String", "k", __import__("pyarrow").table({"k": ["a"], "v": ["b"]}))
    print(engine.arrow(f"SELECT joinGet('{name}', 'v', 'a') AS v").to_pylist())
"""


def test_a_process_after_a_killed_one_creates_staging_tables_of_the_same_names(tmp_path: Path) -> None:
    """A process killed mid-batch leaves its Join tables' folders; the next one, counting
    table names from 0 again, must still create its own (a worker restarted after kill -9
    failed here)."""
    folder = tmp_path / "chdb"
    for n in range(3):
        (folder / "data" / STAGING_DATABASE / f"traces_{n}" / "tmp").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", _RESTARTED, str(folder)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[{'v': 'b'}]"
