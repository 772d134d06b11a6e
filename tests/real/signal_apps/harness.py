"""One scenario, two backends: the fake (step mode) and a real uWSGI.

A scenario only uses a :class:`SignalHarness`: start a layout whose master
ran a setup function (``module:function``, called at import before fork),
run functions in workers, let time pass, read records.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.registry import function_path
from uwsgi_mules.runtime.state import reset_runtime
from uwsgi_mules.topology import Topology

from ...support.calls import run_concurrently
from ...support.server import UwsgiServer
from .app import resolve
from .records import read_records

APP_MODULES = ("tests.real.signal_apps.setups", "tests.real.signal_apps.decorated")


class SignalHarness:
    kind = "abstract"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        (workdir / "records").mkdir(parents=True, exist_ok=True)

    def start(self, setup: str, mules: int | Sequence[str | None] = 0, farms: dict[str, list[int]] | None = None,
              *, processes: int = 2, spooler: bool = False, locks: int = 0) -> SignalHarness:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def in_workers(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        return run_concurrently(calls, self._in_worker_n, timeout=120)

    def _in_worker_n(self, worker: int, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self.in_worker(func, *args)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (virtual time on the fake)."""
        raise NotImplementedError

    def deliver(self) -> None:
        """Give processes a chance to run what is pending (fake only)."""

    def spool_pending(self) -> int:
        raise NotImplementedError

    def records(self, name: str) -> list[dict[str, Any]]:
        return read_records(name)

    def wait_records(self, name: str, count: int, timeout: float = 20.0, settle: float = 0.5) -> list[dict[str, Any]]:
        """Wait until ``count`` records exist, then ``settle`` s more (to catch extras)."""
        deadline = time.monotonic() + timeout
        while len(self.records(name)) < count and time.monotonic() < deadline:
            self.deliver()
            time.sleep(0.02)
        self._settle(settle)
        return self.records(name)

    def _settle(self, seconds: float) -> None:
        time.sleep(seconds)
        self.deliver()


class FakeSignalHarness(SignalHarness):
    kind = "fake"

    def start(self, setup, mules=0, farms=None, *, processes=2, spooler=False, locks=0):
        reset_runtime()
        reset_decorators()
        for name in APP_MODULES:
            sys.modules.pop(name, None)
        self.fake = FakeUwsgi(mules, farms, workers=processes, spooler=spooler, locks=locks)
        self.fake.__enter__()
        with self.fake.as_master():
            resolve(setup)()
        self.fake.simulate_fork()
        return self

    def stop(self) -> None:
        fake = getattr(self, "fake", None)
        if fake is not None:
            fake.__exit__(None, None, None)
        reset_runtime()
        reset_decorators()
        reset_backends()

    def in_worker(self, func, *args):
        return self._in_worker_n(1, func, args)

    def _in_worker_n(self, worker, func, args):
        with self.fake.as_worker(worker):
            return func(*args)

    def sleep(self, seconds: float) -> None:
        self.fake.advance(seconds)

    def deliver(self) -> None:
        self.fake.poll_file_monitors()
        self.fake.deliver_signals()
        self.fake.run_pending()
        if self.fake.spooler.enabled:
            self.fake.run_spooler()

    def _settle(self, seconds: float) -> None:
        for _ in range(3):
            self.deliver()

    def spool_pending(self) -> int:
        return len(self.fake.spooler.tasks)


class RealSignalHarness(SignalHarness):
    kind = "real"

    def start(self, setup, mules=0, farms=None, *, processes=2, spooler=False, locks=0):
        topology = Topology.build(mules, farms)
        args = ["--module", "tests.real.signal_apps.app:application", "--processes", str(processes),
                "--enable-threads"]
        args += ["--mule=" + spec.program if spec.program else "--mule" for spec in topology.mules]
        args += ["--farm=" + farm.option_value() for farm in topology.farms]
        if spooler:
            spool_dir = self.workdir / "spool"
            spool_dir.mkdir(exist_ok=True)
            args += ["--spooler", str(spool_dir), "--spooler-frequency", "1"]
        if locks:
            args += ["--locks", str(locks)]
        env = {"SIGNAL_APP_SETUP": setup, "UWSGIMULES_TOPOLOGY": topology.to_env_value()}
        self.server = UwsgiServer(self.workdir, args, env=env)
        self.server.start()
        if topology.mule_count:
            self.server.wait_for_log(f"spawned uWSGI mule {topology.mule_count} ")
        return self

    def stop(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()

    def in_worker(self, func, *args):
        body = pickle.dumps((function_path(func), args, {}))
        request = urllib.request.Request(self.server.base_url + "/call", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            status, value = pickle.loads(response.read())
        if status == "err":
            raise value
        return value

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def spool_pending(self) -> int:
        return sum(1 for p in (self.workdir / "spool").rglob("uwsgi_spoolfile_on_*"))

    def log_text(self) -> str:
        return self.server.log_text()


HARNESSES: dict[str, type[SignalHarness]] = {"fake": FakeSignalHarness, "real": RealSignalHarness}


def make(kind: str, workdir: Path) -> SignalHarness:
    os.environ["MULES_TEST_DIR"] = str(workdir)
    return HARNESSES[kind](workdir)
