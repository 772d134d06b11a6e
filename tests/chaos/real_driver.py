"""Run a schedule on a real uWSGI instance (the binary, the binary with the C
plugin, or pyuwsgi), in real seconds, injecting real faults (:mod:`.faults`).

Layout: 2 workers, mules 1 and 2 programmed, mule 3 signal-only, farm
``pool`` of mules 1 and 2, ``mule-reload-mercy`` 3 s, ``mule-harakiri`` 2 s,
a results cache (``submit()``), a runtime and a backlog directory.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.server import UwsgiServer, plugin_path
from uwsgi_mules.layout.caches import RESULTS_CACHE
from uwsgi_mules.mule.delivery.dead import list_dead
from uwsgi_mules.core.registry import function_path

from . import faults, ledger, tasks
from .invariants import DIED_WHILE_RUNNING, TASK_LOST, Outcome
from .schedule import Call, Fault, Schedule, Send

APP = "tests.chaos.app:application"
SERVE = "uwsgi_mules.mule:run"
MERCY = 3
HARAKIRI = 2
#: seconds after a start before uWSGI sees every touch file change (see inject())
TOUCH_ARMED = 2.5
#: seconds a send may take (a blocked sender is a finding, not a hang of the suite)
SEND_TIMEOUT = 30.0
#: seconds after the last step for every accepted call to be accounted for
TAIL = 25.0
#: the faults real uWSGI can have
REAL_FAULTS = ("touch-reload", "sighup", "chain-reload", "mules-reload", "stop-start", "kill-mule", "harakiri",
               "disk-full", "resend-race", "busy-worker")  # each "disk-full" is followed by a "disk-free"
#: seconds the busy-worker fault's request lasts
BUSY_SECONDS = 6.0
#: full reloads: every mule respawns; without the C plugin a signal-only mule's queue is dropped
FULL_RELOADS = ("touch-reload", "sighup")


class RealRun:
    """One schedule on one real instance (a second one after a stop)."""

    def __init__(self, workdir: Path, schedule: Schedule, tail: float = TAIL) -> None:
        self.workdir = workdir
        self.tail = tail
        self.schedule = schedule
        self.runtime = workdir / "runtime"
        self.backlog = workdir / "backlog"
        self.touch = {name: workdir / f"{name}.touch" for name in ("reload", "chain", "mules")}
        for path in self.touch.values():
            path.write_text("0")
        self.plugin = plugin_path()
        self.tmpfs = any(f.kind == "disk-full" for f in schedule.faults()) and faults.tmpfs_allowed() is None
        if self.tmpfs:
            faults.mount_tmpfs(self.runtime)
        self.accepted: dict[str, float] = {}
        self.refused: dict[str, str] = {}
        self.servers: list[UwsgiServer] = []
        self.explained = 0
        self.killed: set[int] = set()
        self.problems: list[str] = []
        self.extra: list[Call] = []
        self.signal_dropped = False
        self.command_lines: list[str] = []
        self.filler: Path | None = None
        self.threads: list[threading.Thread] = []
        self.started_at = 0.0

    @property
    def server(self) -> UwsgiServer:
        return self.servers[-1]

    def start(self) -> None:
        args = ["--module", APP, "--processes", "2", f"--mule={SERVE}", f"--mule={SERVE}", "--mule",
                "--farm", "pool:1,2", "--mule-reload-mercy", str(MERCY), "--mule-harakiri", str(HARAKIRI),
                "--touch-reload", str(self.touch["reload"]), "--touch-chain-reload", str(self.touch["chain"]),
                "--touch-mules-reload", str(self.touch["chain"]), "--touch-mules-reload", str(self.touch["mules"]),
                "--cache2", f"name={RESULTS_CACHE},items=2048,blocksize=4096"]
        if self.plugin:
            args = ["--plugin", self.plugin, *args]
        env = {"UWSGIMULES_RUNTIME_DIR": str(self.runtime), "UWSGIMULES_BACKLOG_DIR": str(self.backlog),
               ledger.DIR_ENV: str(self.workdir)}
        server = UwsgiServer(self.workdir, args, env=env, die_on_term=False)
        server.log_path = self.workdir / f"uwsgi-{len(self.servers) + 1}.log"
        self.servers.append(server)
        server.start()
        self.started_at = time.monotonic()
        if self.plugin:
            server.wait_for_log("mules_plugin: ready")

    def run(self) -> Outcome:
        try:
            self.start()
            began = time.monotonic()
            for step in self.schedule.steps:
                time.sleep(max(0.0, began + step.at - time.monotonic()))
                if isinstance(step, Send):
                    self.send(step.calls)
                else:
                    self.inject(step)
            self.disk_free()
            self.wait_accounted()
            return self.outcome()
        finally:
            for server in self.servers:
                server.stop()
            if self.tmpfs:
                faults.unmount(self.runtime)

    # -- sending ---------------------------------------------------------------------

    def call(self, func: Any, *args: Any) -> Any:
        """Run ``func(*args)`` in a worker; a refused connection (the instance
        is reloading) is tried again, nothing else (the call may have run)."""
        body = pickle.dumps((function_path(func), args, {}))
        deadline = time.monotonic() + 60
        while True:
            request = urllib.request.Request(self.server.base_url + "/call", data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:
                    status, value = pickle.loads(response.read())
                break
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if status == "err":
            raise value
        return value

    def send(self, calls: tuple[Call, ...]) -> None:
        batch = [(c.call_id, c.kind, c.how, c.delay, float(c.fail_times)) for c in calls]
        try:
            results = self.call(tasks.send_batch, batch)
        except Exception as exc:  # a sender that hangs or fails is a finding
            self.problems.append(f"sending {len(calls)} call(s) failed: {type(exc).__name__}: {exc}")
            return
        for call_id, accepted, due, error in results:
            if accepted:
                self.accepted[call_id] = due
            else:
                self.refused[call_id] = error or "returned False"

    # -- faults ------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        before = faults.ready_count(self.server.log_text())
        kind = fault.kind
        if kind in ("touch-reload", "chain-reload", "mules-reload"):
            # uWSGI reads the first mtime of a touch-mules-reload file in the master's first
            # cycle after its start or reload (not at start, as it does for touch-reload):
            # a touch before that is taken as the first mtime, and nothing reloads
            time.sleep(max(0.0, self.started_at + TOUCH_ARMED - time.monotonic()))
            faults.touch(self.touch[{"touch-reload": "reload", "chain-reload": "chain"}.get(kind, "mules")])
        elif kind == "sighup":
            os.kill(self.server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
        elif kind == "stop-start":
            self.stop_and_start()
            return
        elif kind == "kill-mule":
            mule = faults.PROGRAMMED[int(fault.at * 100) % len(faults.PROGRAMMED)]
            self.killed.add(faults.kill_mule(self.server.log_text(), mule))
            self.explained += 1
            self.wait_ready(before + 1)
            return
        else:
            {"harakiri": self.harakiri, "disk-full": self.disk_full, "disk-free": self.disk_free,
             "resend-race": self.resend_race, "busy-worker": self.busy_worker}[kind](fault)
            return
        self.explained += faults.MULES
        self.signal_dropped |= kind in FULL_RELOADS and not self.plugin
        self.wait_ready(before + faults.MULES)
        if kind in FULL_RELOADS:
            self.started_at = time.monotonic()  # a new master: touch files are watched again a moment later

    def wait_ready(self, ready: int, timeout: float = 30.0) -> None:
        """Wait until ``ready`` mules logged they are ready in this instance's life."""
        deadline = time.monotonic() + timeout
        while faults.ready_count(self.server.log_text()) < ready:
            if self.server.process is not None and self.server.process.poll() is not None:
                return  # the instance is gone: outcome() says so
            if time.monotonic() > deadline:
                self.problems.append(f"mules not ready again after {timeout:.0f}s")
                return
            time.sleep(0.05)

    def stop_and_start(self) -> None:
        """A stop (SIGINT: the backlog directory keeps what is queued), then a new instance."""
        process = self.server.process
        assert process is not None
        os.kill(process.pid, signal.SIGINT)
        process.wait(60)
        self.server.stop()
        self.signal_dropped = True
        self.start()

    def harakiri(self, fault: Fault) -> None:
        """A task that runs past ``mule-harakiri``: the master kills its mule."""
        call = Call(f"s{self.schedule.seed}h{len(self.extra):03d}x", "sleepy", "call", 0.0,
                    int(faults.SLEEPY_SECONDS))
        self.extra.append(call)
        self.explained += 1
        self.send((call,))

    def busy_worker(self, fault: Fault) -> None:
        """A worker serves a slow request (a reload meanwhile waits for it); in the background."""
        def request() -> None:
            try:
                self.call(tasks.worker_sleep, BUSY_SECONDS)
            except Exception:  # the instance may reload or die under it: only the mules' work is checked
                pass

        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        self.threads.append(thread)

    def disk_full(self, fault: Fault) -> None:
        """The runtime filesystem (a small tmpfs) fills up, until "disk-free"."""
        if not self.tmpfs:
            self.command_lines.append(f"disk-full skipped: {faults.tmpfs_allowed()}")
            return
        self.filler = faults.fill(self.runtime)
        self.command_lines.append(f"disk-full: {self.runtime} filled ({faults.usage(self.runtime)})")

    def disk_free(self, fault: Fault | None = None) -> None:
        if self.filler is not None:
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def resend_race(self, fault: Fault) -> None:
        """Once the tasks bound to die are dead, the service is back and two
        ``uwsgi-mules dead --resend-all`` run at once."""
        self.wait_dead()
        (self.workdir / "fixed").write_text("the service is back")
        for done in faults.resend_race(self.backlog):
            self.command_lines += [f"uwsgi-mules dead (exit {done.returncode}): {line}"
                                   for line in (done.stdout + done.stderr).splitlines()]

    def wait_dead(self, timeout: float = 30.0) -> None:
        """Wait until every accepted flaky call that fails more often than it is retried is a dead task."""
        doomed = {c.call_id for c in self.schedule.calls()
                  if c.kind == "flaky" and c.fail_times > tasks.FLAKY_RETRIES and c.call_id in self.accepted}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.dead_text()
            if all(call_id in dead for call_id in doomed):
                return
            time.sleep(0.2)

    # -- the end -----------------------------------------------------------------------

    def accounted(self, entries: list[ledger.Entry], dead: str, log: str) -> bool:
        done = {e.call_id for e in entries if e.event == ledger.DONE}
        lost = {line for line in log.splitlines() if DIED_WHILE_RUNNING in line and TASK_LOST in line}
        kinds = {c.call_id: c.kind for c in [*self.schedule.calls(), *self.extra]}
        return all(call_id in done or call_id in dead or any(call_id in line for line in lost)
                   or (kinds[call_id] == "signal" and self.signal_dropped) for call_id in self.accepted)

    def wait_accounted(self) -> None:
        """Wait until every accepted call completed, is dead or is named lost; then a moment for duplicates."""
        deadline = time.monotonic() + self.tail
        while time.monotonic() < deadline:
            if self.accounted(ledger.read(self.workdir), self.dead_text(), self.log_text()):
                break
            time.sleep(0.2)
        time.sleep(1.0)

    def dead_text(self) -> str:
        return "\n".join(task.call for task in list_dead(self.backlog))

    def log_text(self) -> str:
        return "".join(server.log_text() for server in self.servers)

    def outcome(self) -> Outcome:
        log = self.log_text()
        spawned = sum(1 for line in log.splitlines() if line.startswith("spawned uWSGI mule "))
        entries = ledger.read(self.workdir)
        crashing = {c.call_id for c in self.schedule.calls() if c.kind in ("crash", "slow_crash")}
        crashes = sum(1 for e in entries if e.event == ledger.ATTEMPT and e.call_id in crashing)
        refused = [line for line in self.command_lines if "not read (never re-sent)" in line]
        problems = self.problems + [f"a re-send refused a record it had re-sent: {line}" for line in refused]
        problems += [f"the master killed a dead mule's pid 0, i.e. its own process group: {line}"
                     for line in log.splitlines() if line.startswith("*** HARAKIRI ON MULE") and "(pid: 0)" in line]
        code = self.server.process.poll() if self.server.process is not None else None
        if code is not None:
            problems.append(f"the uWSGI instance is gone (exit status {code}) and nothing said why")
        return Outcome(self.accepted, self.refused, entries, self.dead_text(),
                       log.splitlines() + self.command_lines,
                       respawns=spawned - faults.MULES * len(self.servers), explained_respawns=self.explained + crashes,
                       killed_pids=self.killed, signal_queue_dropped=self.signal_dropped, problems=problems,
                       extra_calls=self.extra)


def run_on_real(schedule: Schedule, workdir: Path, tail: float = TAIL) -> Outcome:
    """Run ``schedule`` on a new real instance in ``workdir``; wait at most
    ``tail`` seconds after the last step for every call to be accounted for."""
    return RealRun(workdir, schedule, tail).run()
