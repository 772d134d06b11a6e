"""Start, restart and always stop a private, real RabbitMQ node for tests.

The node is Debian's ``rabbitmq-server`` (``.ci/run`` installs the package
without starting its system service), run as this user from
``/usr/lib/rabbitmq/bin`` (the ``/usr/sbin`` wrappers switch to the system's
``rabbitmq`` user and its ``/var/lib/rabbitmq``). Everything the node
writes stays in its work directory: its own ``HOME`` (the Erlang cookie),
``RABBITMQ_MNESIA_BASE`` (the data: queues and messages), ``RABBITMQ_LOG_BASE``,
config file, enabled-plugins file and an empty ``rabbitmq-env.conf``; its
node name is unique (``umtest<pid>x<n>@localhost``); it listens on free
loopback ports for AMQP and for the Erlang distribution, and talks to an
``epmd`` of its own on a third free port (``ERL_EPMD_PORT``), which
:meth:`RabbitMQServer.stop` stops too. :meth:`RabbitMQServer.restart` stops
and starts the same node on the same data directory (the queues are
durable: what they held is there again).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .server import free_port

#: where Debian's package puts the scripts that run the node as the calling user
DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
#: overrides the directory of ``rabbitmq-server`` (another installation)
SCRIPTS_ENV = "UWSGIMULES_RABBITMQ_SCRIPTS"
#: the AMQP 0-9-1 protocol header a client sends first
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
#: the server's answer begins with a method frame (type 1) on channel 0
CONNECTION_START = b"\x01\x00\x00"
#: RabbitMQ's consumer_timeout of the test nodes (ms): above any test task
CONSUMER_TIMEOUT_MS = 600_000

_sequence = itertools.count(1)


def rabbitmq_scripts() -> Path | None:
    """The directory holding ``rabbitmq-server`` and ``rabbitmqctl``, or None."""
    directory = Path(os.environ.get(SCRIPTS_ENV) or DEBIAN_SCRIPTS)
    found = directory / "rabbitmq-server"
    return directory if found.is_file() and os.access(found, os.X_OK) else None


def epmd_command() -> str | None:
    """The ``epmd`` of the Erlang that runs RabbitMQ."""
    return shutil.which("epmd") or next(
        (str(p) for p in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")) if os.access(p, os.X_OK)), None
    )


class RabbitMQServer:
    """A private RabbitMQ node on free loopback ports, its data in ``workdir``."""

    def __init__(self, workdir: Path, scripts: Path, *, consumer_timeout_ms: int = CONSUMER_TIMEOUT_MS) -> None:
        self.workdir = workdir
        self.scripts = scripts
        self.consumer_timeout_ms = consumer_timeout_ms
        self.nodename = f"umtest{os.getpid()}x{next(_sequence)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.log_path = workdir / "server-output.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def environment(self) -> dict[str, str]:
        """The environment of the node and of ``rabbitmqctl`` for it."""
        base = self.workdir
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"),
        }

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"consumer_timeout = {self.consumer_timeout_ms}\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "rabbitmq-env.conf").write_text("")

    def start(self, timeout: float = 90.0) -> RabbitMQServer:
        """Start the node (on its data directory) and wait until AMQP answers."""
        if self.process is not None:
            raise RuntimeError(f"RabbitMQ node {self.nodename} is already running")
        self._write_config()
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.scripts / "rabbitmq-server")], env=self.environment(), cwd=self.workdir,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.answers():
                return self
            time.sleep(0.1)
        log = self.log_text()
        self.stop()
        raise RuntimeError(f"RabbitMQ node {self.nodename} did not answer AMQP on port {self.port} in {timeout}s:\n"
                           f"{log[-4000:]}")

    def answers(self) -> bool:
        """True when the node accepts an AMQP connection (it listens once booted)."""
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(AMQP_HEADER)
                return sock.recv(8).startswith(CONNECTION_START)
        return False

    def stop(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        """Stop the node: SIGTERM (a clean shutdown), or SIGKILL with ``kill``
        (a crash); then its epmd. Its data directory stays (see :meth:`restart`)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self._log.close()
            self.process = None
            self._wait_port_closed()
        self._stop_epmd()

    def restart(self, *, kill: bool = False) -> float:
        """Stop (or kill) the node and start it again on the same data and
        ports; returns the seconds it was unreachable."""
        began = time.monotonic()
        self.stop(kill=kill)
        self.start()
        return time.monotonic() - began

    def _wait_port_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.answers():
            time.sleep(0.05)

    def _stop_epmd(self) -> None:
        """Stop the epmd the node started on its own port (no other node uses it)."""
        epmd = epmd_command()
        if epmd is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([epmd, "-kill"], env=self.environment(), timeout=10,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS``; its output (raises on failure)."""
        done = subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-n", self.nodename, *args], env=self.environment(),
            cwd=self.workdir, capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): {done.stderr}{done.stdout}")
        return done.stdout

    def log_text(self) -> str:
        """The node's own log file and its console output."""
        parts = []
        for path in [self.log_path, self.workdir / "log" / f"{self.nodename}.log"]:
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # a manual check: start, restart, stop a node in a temp dir
    import tempfile

    found = rabbitmq_scripts()
    if found is None:
        raise SystemExit(f"no rabbitmq-server in {DEBIAN_SCRIPTS}: apt-get install rabbitmq-server")
    with tempfile.TemporaryDirectory() as tmp:
        began = time.monotonic()
        with RabbitMQServer(Path(tmp), found) as node:
            print(f"{node.nodename} on {node.url} in {time.monotonic() - began:.1f}s")
            print(f"restarted in {node.restart():.1f}s; {node.ctl('version').strip()}")
