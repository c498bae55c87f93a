"""A single-node KRaft Kafka broker on loopback, its jars fetched from Maven Central by Maven."""
from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from string import Template

from core.errors import LocalBrokerError

log = logging.getLogger(__name__)
OPS_DIR = Path(__file__).resolve().parent.parent / "ops" / "kafka"
POM = OPS_DIR / "pom.xml"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

_HOW_OUT = "install it, or set OLLYSTACK_KAFKA_BOOTSTRAP to a Kafka you already run"


def kafka_version() -> str:
    """The Kafka release pinned in ops/kafka/pom.xml."""
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise LocalBrokerError(f"{POM}: no <kafka.version> property")
    return match.group(1)


def cache_dir() -> Path:
    """Where the broker jars are kept between runs, outside the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ollystack" / f"kafka-{kafka_version()}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _require(tool: str, path: str | None) -> str:
    found = shutil.which(path or tool)
    if not found:
        what = "Java (a JDK or JRE 17+)" if tool == "java" else "Maven (mvn)"
        raise LocalBrokerError(f"the local Kafka broker needs {what}, which is not on PATH: {_HOW_OUT}")
    return found


def fetch_jars(mvn: str | None = None) -> Path:
    """Download the broker jars once into the cache; return the folder holding them.

    Safe when several processes call it at once (a file lock); a download cut short is
    redone because the folder only counts once the marker file is written."""
    target = cache_dir()
    libs, marker = target / "libs", target / ".complete"
    if marker.exists():
        return libs
    mvn_path = _require("mvn", mvn)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        cmd = [mvn_path, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
        log.info("fetching Kafka %s jars with Maven", kafka_version())
        # Arguments, not a shell: mvn from PATH (or the caller) and paths of our own.
        done = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise LocalBrokerError("Maven could not fetch the Kafka jars:\n" + "\n".join(tail))
        marker.write_text(kafka_version())
    return libs


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _set_pdeathsig() -> None:
    # Linux: the JVM gets SIGTERM if the Python process that started it dies, even by
    # kill -9, so no orphan broker is left holding the port and the data folder.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class LocalKafkaBroker:
    """One broker+controller JVM on ``host``. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        java: str | None = None,
        mvn: str | None = None,
        message_max_bytes: int = 8 * 1024 * 1024,
        heap: str = "512m",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.controller_port = free_port(host)
        self.java, self.mvn = java, mvn
        self.message_max_bytes = message_max_bytes
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _write_config(self) -> Path:
        text = Template((OPS_DIR / "server.properties.template").read_text()).substitute(
            host=self.host, port=self.port, controller_port=self.controller_port,
            log_dir=self.data_dir / "log", message_max_bytes=self.message_max_bytes,
        )
        path = self.data_dir / "server.properties"
        path.write_text(text)
        return path

    def _java_cmd(self, java: str, libs: Path, *args: str) -> list[str]:
        return [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={OPS_DIR / 'log4j2.yaml'}",
                "-cp", f"{libs}/*", *args]

    def _format(self, java: str, libs: Path, config: Path) -> None:
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        cmd = self._java_cmd(java, libs, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                             "-c", str(config), "--standalone", "--ignore-formatted")
        done = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603 - our java, our arguments
        if done.returncode != 0:
            raise LocalBrokerError(f"formatting Kafka storage failed: {done.stderr.strip()[-2000:]}")

    def start(self) -> LocalKafkaBroker:
        """Start the broker and return once it accepts connections.

        Raises LocalBrokerError when Java or Maven is missing, the jars cannot be
        fetched, or the broker does not come up within START_TIMEOUT_S."""
        java = _require("java", self.java)
        libs = fetch_jars(self.mvn)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format(java, libs, config)
        logfile = open(self.log_path, "ab")
        self._proc = subprocess.Popen(  # noqa: S603 - our java, our arguments
            self._java_cmd(java, libs, "kafka.Kafka", str(config)),
            stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_set_pdeathsig,
        )
        logfile.close()
        self._wait_ready()
        log.info("local Kafka broker listening", extra={"bootstrap": self.bootstrap})
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        proc = self._proc
        if proc is None:
            raise LocalBrokerError("the Kafka broker was not started")
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalBrokerError(f"the Kafka broker exited with {proc.returncode}:\n{self._log_tail()}")
            if "Kafka Server started" in self._log_tail(200) and self._port_open():
                return
            time.sleep(0.1)
        self.stop()
        raise LocalBrokerError(f"the Kafka broker did not start within {START_TIMEOUT_S}s:\n{self._log_tail()}")

    def _port_open(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.5):
            return True
        return False

    def _log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the JVM: SIGTERM (a clean controlled shutdown), SIGKILL after STOP_TIMEOUT_S."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> LocalKafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.local_broker fetch|run [data_dir] [port]` for ops/kafka/broker."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args[:1] == ["fetch"]:
            print(fetch_jars())
            return 0
        if args[:1] == ["run"]:
            data_dir = Path(args[1] if len(args) > 1 else ".ollystack/kafka")
            port = int(args[2]) if len(args) > 2 else 9092
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            with LocalKafkaBroker(data_dir, port=port) as broker:
                print(f"Kafka listening on {broker.bootstrap}; Ctrl-C stops it", flush=True)
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0
    except LocalBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m pipeline.local_broker fetch | run [data_dir] [port]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
