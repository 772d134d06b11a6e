"""A real uWSGI instance for the monitoring tests: one worker running
:mod:`tests.monitor.app`, the page mounted at ``/mules`` by uWSGI's
``--mount``, a programmed mule 1, a stats server, the C plugin when the tox
env built one (``UWSGIMULES_TEST_PLUGIN``), per-task timings on."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.support.server import UwsgiServer, free_port, plugin_path
from uwsgi_mules.monitor import InstanceSnapshot, InstanceSources, Tracker, take_snapshot

TOKEN = "test-action-token"
T = TypeVar("T")


@dataclass
class Instance:
    server: UwsgiServer
    workdir: Path
    stats: str
    runtime: Path
    plugin: bool
    tracker: Tracker

    @property
    def page_url(self) -> str:
        return self.server.base_url + "/mules/"

    def send(self, task: str, count: int = 1, **query: str) -> int:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return int(json.loads(self.server.get(f"/send?task={task}&n={count}{extra}"))["sent"])

    def snapshot(self) -> InstanceSnapshot:
        return take_snapshot(InstanceSources(self.stats, self.runtime), self.tracker)

    def ledger(self) -> list[str]:
        path = self.workdir / "ledger.txt"
        return path.read_text().splitlines() if path.exists() else []

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.page_url + path, timeout=30) as response:
            return json.loads(response.read())


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "") -> T:
    """``check()`` once it is truthy (polled every 0.1 s), else ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout} s: {what or check}")
        time.sleep(0.1)


@contextlib.contextmanager
def monitored_instance(workdir: Path, *, read_only: bool = False, periodic: bool = False) -> Iterator[Instance]:
    """The instance; ``periodic``: with the entry of :mod:`tests.monitor.periodic_tasks` (every second)."""
    stats = f"127.0.0.1:{free_port()}"
    runtime = workdir / "runtime"
    plugin = plugin_path()
    args = ["--module", "tests.monitor.app:application", "--single-interpreter",
            "--mount", "/mules=uwsgi_mules.monitor.web.mounted:application", "--manage-script-name",
            "--processes", "1", "--threads", "2", "--mule=uwsgi_mules.mule:run",
            "--stats", stats, "--enable-metrics"]
    if plugin:
        args = ["--plugin", plugin, *args]
    env = {"UWSGIMULES_RUNTIME_DIR": str(runtime), "UWSGIMULES_TASK_STATS": "1",
           "UWSGIMULES_TASK_MODULES": "tests.monitor.tasks" + (",tests.monitor.periodic_tasks" if periodic else ""), "UWSGIMULES_STATS": stats,
           "UWSGIMULES_DASHBOARD_TOKEN": TOKEN, "UWSGIMULES_DASHBOARD_READ_ONLY": "1" if read_only else ""}
    with UwsgiServer(workdir, args, env=env) as server:
        server.wait_for_log("*** Stats server enabled on")
        # the mule's first heartbeat (its first idle wake-up) installs the per-task timers
        wait_for(lambda: (runtime / "mule1.stats").exists(), what="mule 1's first heartbeat")
        yield Instance(server, workdir, stats, runtime, plugin is not None, Tracker())
