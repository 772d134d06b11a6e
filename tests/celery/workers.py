"""Standalone Celery workers of the broker tests, started and killed as a
supervisor (systemd, Kubernetes) would: ``celery -A tests.celery.broker_app
worker`` with the prefork pool, in its own process group."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class CeleryWorker:
    """One ``celery worker`` process (the main process) and its pool processes."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str], queues: list[str],
                 concurrency: int = 2) -> None:
        self.workdir = workdir
        self.name = name
        self.env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.queues = queues
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0
        #: starts after the main process exited by itself (see respawn_if_exited)
        self.respawns = 0
        self.log_path = workdir / f"worker-{name}.log"

    def start(self) -> CeleryWorker:
        self.generation += 1
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery.broker_app:app", "worker", "-P", "prefork",
             "-c", str(self.concurrency), "-Q", ",".join(self.queues), "-n", f"{self.name}g{self.generation}@localhost",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def respawn_if_exited(self) -> bool:
        """Start the worker again when its main process has exited, as a
        supervisor would (Celery exits when a pool process dies while it
        starts: "Could not start worker processes"); True when it did."""
        if self.process is None or self.process.poll() is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool processes left behind
        self.respawns += 1
        self.start()
        return True

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the worker says it is ready (connected, consuming)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"{self.name}g{self.generation}@localhost ready" in self.log_text():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready in {timeout}s:\n{self.log_text()[-4000:]}")

    def pool_pids(self) -> list[int]:
        """The live pool processes (children of the main process, zombies left out)."""
        if self.process is None:
            return []
        pids = []
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
            for pid in (int(p) for p in text.split()):
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX":
                        pids.append(pid)
        return pids

    def kill_pool_process(self, index: int, wait: float = 60.0) -> int | None:
        """SIGKILL one pool process (the main process starts another); its pid.
        Waits up to ``wait`` seconds for one (a worker just started has none
        yet: on a busy machine its start takes seconds), starting the worker
        again if it exited meanwhile."""
        deadline = time.monotonic() + wait
        pids = self.pool_pids()
        while not pids and time.monotonic() < deadline:
            time.sleep(0.05)
            self.respawn_if_exited()
            pids = self.pool_pids()
        if not pids:
            return None
        pid = pids[index % len(pids)]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill_main(self) -> None:
        """SIGKILL the main process and then its pool processes (the whole
        group, as a supervisor stopping a unit or a lost machine would)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL of the group after 20 s."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool processes left behind
        self.process = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def ledger_lines(directory: Path, name: str) -> list[str]:
    """Every whole line of the ``name-<pid>.txt`` files (a half-written last line ignored)."""
    lines: list[str] = []
    for path in sorted(directory.glob(f"{name}-*.txt")):
        text = path.read_text()
        lines += [line for line in text.split("\n")[:-1] if line]
    return lines


def ledger_counts(directory: Path, name: str = "ledger") -> collections.Counter[int]:
    """How many times each task number was executed (finished)."""
    return collections.Counter(int(line.split()[0]) for line in ledger_lines(directory, name))
