"""One scenario, three backends.

A scenario receives a :class:`Harness` and uses only its methods: start a
layout, run functions "in a worker" or "in a mule", read what mules
recorded. ``FakeStepHarness`` runs mules with ``run_pending()``,
``FakeThreadedHarness`` with real mule threads, ``RealHarness`` starts a
real uWSGI (the ``uwsgi`` binary or pyuwsgi) and talks to it over HTTP.
What they share with the signal scenarios' harness is in
:mod:`tests.support.harness`.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.registry import function_path
from uwsgi_mules.core.state import reset_runtime
from uwsgi_mules.layout.topology import Topology
from uwsgi_mules.layout.uwsgi_args import options_from_environ

from ..support import harness as shared
from ..support.server import plugin_path
from . import tasks

MuleSpecs = int | Sequence[str | None]


class Harness(shared.ScenarioHarness):
    """What a contract scenario may do; implemented per backend."""

    #: mules run concurrently with the sender (bursts need this)
    concurrent = True

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

    def in_mule(self, mule: int, func: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``func(*args)`` in mule ``mule`` (which must serve offloads)."""
        raise NotImplementedError

    def let_time_pass(self, seconds: float) -> None:
        """Let ``seconds`` pass on the clock of due times, then deliver."""
        time.sleep(seconds)
        self.deliver()


class FakeStepHarness(shared.FakeHarness, Harness):
    kind = "fake-step"
    concurrent = False
    threaded = False

    def start(self, mules, farms=None, *, processes=2, lazy_apps=False, topology_env=True, env=None,
              msg_size=None, recv_size=None, hide_layout=False):
        reset_runtime()
        topology = self.layout(mules, farms, env=env, msg_size=msg_size, recv_size=recv_size)
        backlog = (env or {}).get("UWSGIMULES_BACKLOG_DIR")  # what a real mule reads from its environment
        self.enter(FakeUwsgi(topology=topology, workers=processes, threaded=self.threaded, backlog_dir=backlog))
        return self

    def let_time_pass(self, seconds: float) -> None:
        if self.threaded:
            super().let_time_pass(seconds)
        else:  # the virtual clock of due times
            self.fake.advance(seconds)
            self.deliver()

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


class RealHarness(shared.RealHarness, Harness):
    app = "tests.contract.app:application"

    def start(self, mules, farms=None, *, processes=2, lazy_apps=False, topology_env=True, env=None,
              msg_size=None, recv_size=None, hide_layout=False):
        topology = Topology.build(mules, farms, msg_size=msg_size, recv_size=recv_size)
        args = ["--processes", str(processes), *shared.layout_args(topology, hide_layout=hide_layout)]
        if msg_size:
            args.append(f"--mule-msg-size={msg_size}")
        if lazy_apps:
            # mules do not load the app with lazy-apps: signal-only mules need the
            # tasks module through shared-import to get the offload hook
            args += ["--lazy-apps", "--shared-import", "tests.contract.tasks"]
        if topology_env and not hide_layout:
            args += ["--env", f"UWSGIMULES_TOPOLOGY={topology.to_env_value()}"]
        count = self.layout(mules, farms, env=env).mule_count
        self.launch(args, env=env, mule_count=count, plugin=plugin_path())
        return self

    def in_mule(self, mule, func, *args, timeout=30.0):
        token = uuid.uuid4().hex
        self.call(tasks.send_probe, (mule, token, function_path(func), args))
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


HARNESSES: dict[str, type[Harness]] = {
    "fake-step": FakeStepHarness,
    "fake-threaded": FakeThreadedHarness,
    "real": RealHarness,
}


def make_harness(kind: str, workdir: Path) -> Harness:
    os.environ["MULES_TEST_DIR"] = str(workdir)
    return HARNESSES[kind](workdir)
