"""One scenario, two backends: the fake (step mode) and a real uWSGI.

A scenario only uses a :class:`SignalHarness`: start a layout whose master
ran a setup function (``module:function``, called at import before fork),
run functions in workers, let time pass, read records. What it shares with
the contract harness is in :mod:`tests.support.harness`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.layout.topology import Topology

from ...support import harness as shared
from .app import resolve

APP_MODULES = ("tests.real.signal_apps.setups", "tests.real.signal_apps.decorated")


class SignalHarness(shared.ScenarioHarness):
    """What a signal scenario may do; implemented per backend."""

    wait_timeout = 20.0
    settle_seconds = 0.5
    workers_timeout = 120.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        (workdir / "records").mkdir(parents=True, exist_ok=True)

    def start(self, setup: str, mules: int | Sequence[str | None] = 0, farms: dict[str, list[int]] | None = None,
              *, processes: int = 2, spooler: bool = False, locks: int = 0) -> SignalHarness:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (virtual time on the fake)."""
        raise NotImplementedError

    def spool_pending(self) -> int:
        raise NotImplementedError


class FakeSignalHarness(shared.FakeHarness, SignalHarness):
    kind = "fake"

    def start(self, setup, mules=0, farms=None, *, processes=2, spooler=False, locks=0):
        self.reset()
        for name in APP_MODULES:
            sys.modules.pop(name, None)
        fake = self.enter(FakeUwsgi(mules, farms, workers=processes, spooler=spooler, locks=locks))
        with fake.as_master():
            resolve(setup)()
        fake.simulate_fork()
        return self

    def reset(self) -> None:
        super().reset()
        reset_decorators()

    def sleep(self, seconds: float) -> None:
        self.fake.advance(seconds)

    def deliver(self) -> None:
        self.fake.poll_file_monitors()
        self.fake.deliver_signals()
        self.fake.run_pending()
        if self.fake.spooler.enabled:
            self.fake.run_spooler()

    def settle(self, seconds: float) -> None:
        for _ in range(3):
            self.deliver()

    def spool_pending(self) -> int:
        return len(self.fake.spooler.tasks)


class RealSignalHarness(shared.RealHarness, SignalHarness):
    app = "tests.real.signal_apps.app:application"

    def start(self, setup, mules=0, farms=None, *, processes=2, spooler=False, locks=0):
        topology = Topology.build(mules, farms)
        args = ["--processes", str(processes), "--enable-threads", *shared.layout_args(topology)]
        if spooler:
            spool_dir = self.workdir / "spool"
            spool_dir.mkdir(exist_ok=True)
            args += ["--spooler", str(spool_dir), "--spooler-frequency", "1"]
        if locks:
            args += ["--locks", str(locks)]
        env = {"SIGNAL_APP_SETUP": setup, "UWSGIMULES_TOPOLOGY": topology.to_env_value()}
        self.launch(args, env=env, mule_count=topology.mule_count)
        return self

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def spool_pending(self) -> int:
        return sum(1 for p in (self.workdir / "spool").rglob("uwsgi_spoolfile_on_*"))


HARNESSES: dict[str, type[SignalHarness]] = {"fake": FakeSignalHarness, "real": RealSignalHarness}


def make(kind: str, workdir: Path) -> SignalHarness:
    os.environ["MULES_TEST_DIR"] = str(workdir)
    return HARNESSES[kind](workdir)
