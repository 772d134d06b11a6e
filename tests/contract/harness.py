"""One scenario, three backends.

A scenario receives a :class:`Harness` and uses only its methods: start a
layout, run functions "in a worker" or "in a mule", read what mules
recorded. ``FakeStepHarness`` runs mules with ``run_pending()``,
``FakeThreadedHarness`` with real mule threads, ``RealHarness`` starts a
real uWSGI (the ``uwsgi`` binary or pyuwsgi) and talks to it over HTTP.
"""

from __future__ import annotations

import os
import pickle
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.registry import function_path
from uwsgi_mules.runtime.state import reset_runtime
from uwsgi_mules.topology import Topology
from uwsgi_mules.uwsgi_args import options_from_environ

from ..support.calls import run_concurrently
from ..support.records import read_jsonl
from ..support.server import UwsgiServer
from . import tasks

MuleSpecs = int | Sequence[str | None]


class Harness:
    """What a contract scenario may do; implemented per backend."""

    kind = "abstract"
    #: mules run concurrently with the sender (bursts need this)
    concurrent = True

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def start(
        self,
        mules: MuleSpecs,
        farms: dict[str, list[int]] | None = None,
        *,
        processes: int = 2,
        lazy_apps: bool = False,
        topology_env: bool = True,
        env: dict[str, str] | None = None,
        msg_size: int | None = None,
        recv_size: int | None = None,
        hide_layout: bool = False,
    ) -> Harness:
        """Start ``mules`` and ``farms`` as command-line options, with ``env``
        (``UWSGI_*`` variables, read first) in the environment. Real uWSGI
        only: ``topology_env`` passes the command-line layout the way rendered
        configs do; ``hide_layout`` gives mule programs through placeholders
        that uwsgi-mules cannot read (its layout is then unknown)."""
        raise NotImplementedError

    @staticmethod
    def layout(mules, farms=None, *, env=None, msg_size=None, recv_size=None) -> Topology:
        """The layout uWSGI builds: ``env``'s options first, then the command line's."""
        topology = Topology.build(mules, farms, msg_size=msg_size, recv_size=recv_size)
        return topology.after_options(options_from_environ(env or {}))

    def stop(self) -> None:
        raise NotImplementedError

    def in_worker(self, func: Callable[..., Any], *args: Any, worker: int = 1) -> Any:
        """Run ``func(*args)`` in a worker; re-raise what it raised."""
        raise NotImplementedError

    def in_workers(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Run calls concurrently, one per worker; re-raise the first error."""
        return run_concurrently(calls, lambda worker, func, args: self.in_worker(func, *args, worker=worker))

    def in_mule(self, mule: int, func: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``func(*args)`` in mule ``mule`` (which must serve offloads)."""
        raise NotImplementedError

    def deliver(self) -> None:
        """Give mules a chance to work (step mode runs them here)."""

    # -- records (shared by all) -------------------------------------------------

    def records(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.workdir / "records" / f"{name}.jsonl")

    def wait_records(self, name: str, count: int, timeout: float = 60.0, settle: float = 0.3) -> list[dict[str, Any]]:
        """Wait until ``count`` records exist (then ``settle`` seconds more, to
        catch duplicates) and return them all."""
        deadline = time.monotonic() + timeout
        while True:
            self.deliver()
            found = self.records(name)
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        time.sleep(settle)
        self.deliver()
        return self.records(name)


class FakeStepHarness(Harness):
    kind = "fake-step"
    concurrent = False
    threaded = False

    def start(self, mules, farms=None, *, processes=2, lazy_apps=False, topology_env=True, env=None,
              msg_size=None, recv_size=None, hide_layout=False):
        reset_runtime()
        topology = self.layout(mules, farms, env=env, msg_size=msg_size, recv_size=recv_size)
        self.fake = FakeUwsgi(topology=topology, workers=processes, threaded=self.threaded)
        self.fake.__enter__()
        return self

    def stop(self) -> None:
        fake = getattr(self, "fake", None)
        if fake is not None:
            fake.__exit__(None, None, None)
        reset_runtime()
        reset_backends()

    def in_worker(self, func, *args, worker=1):
        with self.fake.as_worker(worker):
            return func(*args)

    def in_mule(self, mule, func, *args, timeout=30.0):
        with self.fake.as_mule(mule):
            return func(*args)

    def deliver(self) -> None:
        if not self.threaded:
            self.fake.run_pending()


class FakeThreadedHarness(FakeStepHarness):
    kind = "fake-threaded"
    concurrent = True
    threaded = True


class RealHarness(Harness):
    kind = "real"

    def start(self, mules, farms=None, *, processes=2, lazy_apps=False, topology_env=True, env=None,
              msg_size=None, recv_size=None, hide_layout=False):
        topology = Topology.build(mules, farms, msg_size=msg_size, recv_size=recv_size)
        args = ["--module", "tests.contract.app:application", "--processes", str(processes)]
        for number, spec in enumerate(topology.mules, start=1):
            if spec.program and hide_layout:
                args += ["--set-ph", f"mule{number}={spec.program}", f"--mule=%(mule{number})"]
            else:
                args.append("--mule=" + spec.program if spec.program else "--mule")
        args += ["--farm=" + farm.option_value() for farm in topology.farms]
        if msg_size:
            args.append(f"--mule-msg-size={msg_size}")
        topology_env = topology_env and not hide_layout
        if lazy_apps:
            # mules do not load the app with lazy-apps: signal-only mules need the
            # tasks module through shared-import to get the offload hook
            args += ["--lazy-apps", "--shared-import", "tests.contract.tasks"]
        if topology_env:
            args += ["--env", f"UWSGIMULES_TOPOLOGY={topology.to_env_value()}"]
        plugin = plugin_path()
        if plugin:
            args = ["--plugin", plugin, *args]
        self.server = UwsgiServer(self.workdir, args, env=env)
        self.server.start()
        if plugin:
            self.server.wait_for_log("mules_plugin: ready")
        count = self.layout(mules, farms, env=env).mule_count
        if count:
            self.server.wait_for_log(f"spawned uWSGI mule {count} ")
        return self

    def stop(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()

    def _call(self, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        body = pickle.dumps((function_path(func), args, {}))
        request = urllib.request.Request(self.server.base_url + "/call", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            status, value = pickle.loads(response.read())
        if status == "err":
            raise value
        return value

    def in_worker(self, func, *args, worker=1):
        return self._call(func, args)

    def in_mule(self, mule, func, *args, timeout=30.0):
        token = uuid.uuid4().hex
        self._call(tasks.send_probe, (mule, token, function_path(func), args))
        target = self.workdir / f"probe-{token}.pkl"
        deadline = time.monotonic() + timeout
        while not target.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"mule {mule} did not answer in {timeout}s:\n{self.server.log_text()[-3000:]}")
            time.sleep(0.02)
        status, value = pickle.loads(target.read_bytes())
        if status == "err":
            raise value
        return value

    def log_text(self) -> str:
        return self.server.log_text()


def plugin_path() -> str | None:
    """The C plugin the real harness loads (tox env ``plugin``), or None."""
    path = os.environ.get("UWSGIMULES_TEST_PLUGIN")
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"UWSGIMULES_TEST_PLUGIN={path} does not exist (build it: python plugin/build.py DIR)")
    if not path and os.environ.get("UWSGIMULES_REQUIRE_PLUGIN") == "1":
        raise RuntimeError("UWSGIMULES_REQUIRE_PLUGIN=1 but UWSGIMULES_TEST_PLUGIN is not set")
    return path or None


HARNESSES: dict[str, type[Harness]] = {
    "fake-step": FakeStepHarness,
    "fake-threaded": FakeThreadedHarness,
    "real": RealHarness,
}


def make_harness(kind: str, workdir: Path) -> Harness:
    os.environ["MULES_TEST_DIR"] = str(workdir)
    return HARNESSES[kind](workdir)
