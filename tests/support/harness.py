"""What every scenario harness shares: one scenario, the fake or a real uWSGI.

A scenario module (``tests/contract``, ``tests/real/signal_apps``) writes
its scenarios against a harness: start a layout, run functions "in a
worker", let mules work, read the records they wrote. The fake harnesses
run everything in this process on :class:`~uwsgi_mules.fake.FakeUwsgi`; the
real ones start a :class:`~tests.support.server.UwsgiServer` whose WSGI
application answers ``POST /call`` (:mod:`tests.support.calls`).

This module holds what the harnesses of both suites have in common: the
record reading and waiting, concurrent calls, the fake's worker context and
clean-up, the command line of a layout, the remote call and the server's
life. Each suite adds only what its scenarios need.
"""

from __future__ import annotations

import pickle
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.registry import function_path
from uwsgi_mules.core.state import reset_runtime
from uwsgi_mules.layout.topology import Topology

from .calls import run_concurrently
from .records import read_jsonl
from .server import UwsgiServer

#: how long one ``POST /call`` may take
CALL_TIMEOUT = 120.0


class ScenarioHarness:
    """What a scenario may do on any backend; subclasses implement ``start``."""

    kind = "abstract"
    #: how long :meth:`wait_records` waits by default, and then settles
    wait_timeout = 60.0
    settle_seconds = 0.3
    #: how long :meth:`in_workers` waits for each concurrent call
    workers_timeout = 180.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def stop(self) -> None:
        raise NotImplementedError

    def in_worker(self, func: Callable[..., Any], *args: Any, worker: int = 1) -> Any:
        """Run ``func(*args)`` in a worker; re-raise what it raised."""
        raise NotImplementedError

    def in_workers(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Run calls concurrently, one per worker; re-raise the first error."""
        return run_concurrently(
            calls, lambda worker, func, args: self.in_worker(func, *args, worker=worker), timeout=self.workers_timeout
        )

    def deliver(self) -> None:
        """Give mules a chance to work (the fake in step mode runs them here)."""

    def records(self, name: str) -> list[dict[str, Any]]:
        """The records processes appended to ``<workdir>/records/<name>.jsonl``."""
        return read_jsonl(self.workdir / "records" / f"{name}.jsonl")

    def wait_records(
        self, name: str, count: int, timeout: float | None = None, settle: float | None = None
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` records exist (then ``settle`` seconds more, to
        catch duplicates and extras) and return them all."""
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        while True:
            self.deliver()
            if len(self.records(name)) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.settle(self.settle_seconds if settle is None else settle)
        return self.records(name)

    def settle(self, seconds: float) -> None:
        """Let ``seconds`` pass, then deliver what is pending."""
        time.sleep(seconds)
        self.deliver()


class FakeHarness(ScenarioHarness):
    """Runs scenarios on :class:`FakeUwsgi` in this process; ``start`` sets ``self.fake``."""

    fake: FakeUwsgi | None = None

    def enter(self, fake: FakeUwsgi) -> FakeUwsgi:
        """Use ``fake`` (entered here, left by :meth:`stop`)."""
        self.fake = fake
        fake.__enter__()
        return fake

    def stop(self) -> None:
        if self.fake is not None:
            self.fake.__exit__(None, None, None)
        self.reset()

    def reset(self) -> None:
        """Forget the module state a scenario left behind."""
        reset_runtime()
        reset_backends()

    def in_worker(self, func: Callable[..., Any], *args: Any, worker: int = 1) -> Any:
        assert self.fake is not None, "start() the harness first"
        with self.fake.as_worker(worker):
            return func(*args)


class RealHarness(ScenarioHarness):
    """Runs scenarios on a real uWSGI serving ``app`` (a ``POST /call`` WSGI application)."""

    kind = "real"
    #: the WSGI module of the test application (``module:callable``)
    app = ""
    server: UwsgiServer | None = None

    def launch(self, args: Sequence[str], *, env: dict[str, str] | None = None, mule_count: int = 0,
               plugin: str | None = None) -> UwsgiServer:
        """Start uWSGI serving :attr:`app` with ``args`` (and the C plugin
        ``plugin`` loaded first); return once its ``mule_count`` mules spawned."""
        argv = ["--module", self.app, *args]
        if plugin:
            argv = ["--plugin", plugin, *argv]
        self.server = UwsgiServer(self.workdir, argv, env=env)
        self.server.start()
        if plugin:
            self.server.wait_for_log("mules_plugin: ready")
        if mule_count:
            self.server.wait_for_log(f"spawned uWSGI mule {mule_count} ")
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def call(self, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Run ``func(*args)`` in a worker of the server; re-raise what it raised."""
        assert self.server is not None, "start() the harness first"
        body = pickle.dumps((function_path(func), args, {}))
        request = urllib.request.Request(self.server.base_url + "/call", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as response:
            status, value = pickle.loads(response.read())
        if status == "err":
            raise value
        return value

    def in_worker(self, func: Callable[..., Any], *args: Any, worker: int = 1) -> Any:
        # the worker that answers is uWSGI's choice: ``worker`` only numbers the call
        return self.call(func, args)

    def log_text(self) -> str:
        return self.server.log_text() if self.server is not None else ""


def layout_args(topology: Topology, *, hide_layout: bool = False) -> list[str]:
    """The ``--mule`` and ``--farm`` options of ``topology``; with
    ``hide_layout`` the mule programs go through placeholders that
    uwsgi-mules cannot read (its layout is then unknown)."""
    args: list[str] = []
    for number, spec in enumerate(topology.mules, start=1):
        if spec.program and hide_layout:
            args += ["--set-ph", f"mule{number}={spec.program}", f"--mule=%(mule{number})"]
        else:
            args.append("--mule=" + spec.program if spec.program else "--mule")
    return args + ["--farm=" + farm.option_value() for farm in topology.farms]
