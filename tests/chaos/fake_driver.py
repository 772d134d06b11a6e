"""Run a schedule on :class:`~uwsgi_mules.fake.FakeUwsgi` in step mode, on its virtual clock.

The fake keeps what uWSGI itself does (queues, the clock, reloads and stops
with a backlog directory, a task that kills its mule); the faults it cannot
have (a mule killed from outside, harakiri, a full filesystem, the
``uwsgi-mules dead`` command) run on real uWSGI only (:mod:`.real_driver`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.layout.caches import RESULTS_CACHE

from . import ledger, tasks
from .invariants import Outcome
from .schedule import OPEN_DEFECTS, Fault, Schedule, Send

SERVE = "uwsgi_mules.mule:run"
#: the faults the fake can inject (each reload kind is the fake's graceful reload)
FAKE_FAULTS = ("touch-reload", "sighup", "chain-reload", "mules-reload", "stop-start")
#: the fake has no "reload-death" (issue 25 beyond its list: a real mule dying during a reload)
FAKE_OPEN_DEFECTS = OPEN_DEFECTS - {"reload-death"}
#: virtual seconds between two deliveries
TICK = 0.05
#: virtual seconds after the last step for due calls and retries to run
TAIL = 15.0
CRASH_LINE = "died mid-task (simulated crash); respawned"


def new_fake(backlog: Path) -> FakeUwsgi:
    return FakeUwsgi(mules=[SERVE, SERVE, None], farms={"pool": [1, 2]}, backlog_dir=backlog,
                     caches=[f"name={RESULTS_CACHE},items=2048,blocksize=4096"])


@contextlib.contextmanager
def chaos_environment(workdir: Path) -> Iterator[None]:
    """``CHAOS_DIR`` names ``workdir`` while the schedule runs (the tasks write the ledger there)."""
    previous = os.environ.get(ledger.DIR_ENV)
    os.environ[ledger.DIR_ENV] = str(workdir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ledger.DIR_ENV, None)
        else:
            os.environ[ledger.DIR_ENV] = previous


class FakeRun:
    """One schedule on one fake (a new one after each stop), its log and dead tasks kept."""

    def __init__(self, workdir: Path, make_fake: Callable[[Path], FakeUwsgi] = new_fake) -> None:
        self.workdir = workdir
        self.make_fake = make_fake
        self.backlog = workdir / "backlog"
        self.log_lines: list[str] = []
        self.dead: list[str] = []
        self.accepted: dict[str, float] = {}
        self.refused: dict[str, str] = {}
        self.loop_errors: list[str] = []
        self.fake = make_fake(self.backlog).__enter__()

    def run(self, schedule: Schedule) -> Outcome:
        now = 0.0
        for step in schedule.steps:
            now = self.until(now, step.at)
            if isinstance(step, Send):
                self.send(step)
            else:
                self.inject(step)
        self.until(now, now + TAIL)
        self.close()
        return Outcome(self.accepted, self.refused, ledger.read(self.workdir), "\n".join(self.dead),
                       self.log_lines, respawns=sum(CRASH_LINE in line for line in self.log_lines),
                       explained_respawns=self.crash_attempts(), loop_errors=self.loop_errors)

    def until(self, now: float, when: float) -> float:
        """Deliver, moving the virtual clock in ticks from ``now`` to ``when``."""
        while now < when:
            step = min(TICK, when - now)
            self.fake.advance(step)
            now += step
            self.deliver()
        self.deliver()
        return now

    def deliver(self) -> None:
        """Run what is pending; an exception out of the mule side is what kills a real mule."""
        try:
            self.fake.run_pending()
        except Exception as exc:  # reported as a violation: a real mule would have died
            self.loop_errors.append(f"{type(exc).__name__}: {exc}")

    def send(self, step: Send) -> None:
        batch = [(c.call_id, c.kind, c.how, c.delay, float(c.fail_times)) for c in step.calls]
        with self.fake.as_worker(1):
            for call_id, accepted, due, error in tasks.send_batch(batch):
                if accepted:
                    self.accepted[call_id] = due
                else:
                    self.refused[call_id] = error or "returned False"

    def inject(self, fault: Fault) -> None:
        if fault.kind == "stop-start":
            self.fake.shutdown()
            self.close()
            clock = self.fake.clock.elapsed
            self.fake = self.make_fake(self.backlog)
            self.fake.clock.elapsed = clock  # the wall clock goes on across the restart
            self.fake.__enter__()
        else:
            self.fake.reload()

    def close(self) -> None:
        """Leave the fake, keeping its log and dead tasks."""
        self.fake.__exit__(None, None, None)
        self.log_lines += self.fake.log_lines
        self.dead += [task.call for task in self.fake.dead_letters]

    def crash_attempts(self) -> int:
        """Each started attempt of the crash task killed its mule once."""
        return sum(1 for e in ledger.read(self.workdir) if e.event == ledger.ATTEMPT and e.call_id in self.crashing)

    crashing: set[str] = set()


def run_on_fake(schedule: Schedule, workdir: Path, make_fake: Callable[[Path], FakeUwsgi] = new_fake) -> Outcome:
    """Run ``schedule`` on fakes ``make_fake(backlog_dir)`` makes (a new one after a stop)."""
    with chaos_environment(workdir):
        run = FakeRun(workdir, make_fake)
        run.crashing = {c.call_id for c in schedule.calls() if c.kind in ("crash", "slow_crash")}
        return run.run(schedule)
