"""``@mule``, ``@muleloop``, ``@mulemsg`` and ``@farm``: one application,
booted on real uWSGI with the real ``uwsgidecorators`` and then with
``uwsgi_mules.decorators`` (only the import differs); which process ran
what, and how often, must be the same. The same application runs on the
fake through the drop-in."""

from __future__ import annotations

import json
import pickle
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import MULE_READY, WORKER_READY, UwsgiServer
from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.core.state import reset_runtime
from uwsgi_mules.layout.topology import Topology

from .mule_loops import records as mule_app

APP = "tests.real.mule_loops.app"

#: what the application must do, as (mule, detail) per decorator; and the
#: handler of a signal for mule 5: the original's @mulemsg loop never runs it
#: (uWSGI 2.0's mule_get_msg() with default arguments does not handle signals)
SIGNAL_ORIGINAL: list[tuple[int, object]] = []
SIGNAL_OURS = [(5, 30)]
EXPECTED = {
    "mule": [(1, None)],
    "muleloop": [(4, 1), (4, 2), (4, 3)],
    "mulemsg": [(5, "to-mule-5-a"), (5, "to-mule-5-b")],
    "farm": [(6, "to-farm-f-a"), (6, "to-farm-f-b")],
}


class LoopingMulesServer(UwsgiServer):
    """Mules 4, 5 and 6 never leave their post-fork loop, so they never log
    the as-mule hook line: ready once the workers and mules 1-3 are."""

    ready_mules = 3

    def _all_processes_ready(self) -> bool:
        lines = self.log_text().splitlines()
        workers = sum(1 for ln in lines if ln.startswith("spawned uWSGI worker "))
        return (
            workers > 0
            and sum(1 for ln in lines if ln == WORKER_READY) >= workers
            and sum(1 for ln in lines if ln == MULE_READY) >= self.ready_mules
            and any(ln.startswith(f"spawned uWSGI mule {mule_app.MULES} ") for ln in lines)
        )


def read(workdir: Path, name: str) -> list[dict[str, Any]]:
    path = workdir / "records" / f"{name}.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln] if path.exists() else []


def summary(workdir: Path) -> dict[str, list[tuple[int, object]]]:
    result = {}
    for name in [*EXPECTED, "signal"]:
        records = read(workdir, name)
        result[name] = sorted((r["mule"], r.get("message", r.get("iteration", r.get("signum")))) for r in records)
        assert all(r["worker"] == 0 for r in records), records
    return result


def wait_for(workdir: Path, counts: dict[str, int], timeout: float = 30.0, settle: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(read(workdir, name)) >= count for name, count in counts.items()):
            break
        time.sleep(0.05)
    time.sleep(settle)  # anything more that would (wrongly) arrive


def call(server: UwsgiServer, path: str, *args: Any) -> Any:
    """Run ``path(*args)`` in a worker of ``server`` (``POST /call``)."""
    body = pickle.dumps((path, args, {}))
    request = urllib.request.Request(server.base_url + "/call", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        status, value = pickle.loads(response.read())
    if status == "err":
        raise value
    return value


def boot(workdir: Path, implementation: str, extra: tuple[str, ...] = ()) -> LoopingMulesServer:
    topology = Topology.build(mule_app.MULES, mule_app.FARMS)
    args = ["--module", f"{APP}:application", "--processes", "1", "--enable-threads", *extra]
    args += ["--mule"] * mule_app.MULES + ["--farm=" + f.option_value() for f in topology.farms]
    env = {"MULE_LOOPS_DECORATORS": implementation, "UWSGIMULES_TOPOLOGY": topology.to_env_value()}
    return LoopingMulesServer(workdir, args, env=env)


def run_app(workdir: Path, implementation: str) -> tuple[dict[str, list[tuple[int, object]]], str]:
    workdir.mkdir(parents=True)
    with boot(workdir, implementation) as server:
        assert call(server, f"{APP}:send_messages") == [True, True, None, None, None]
        counts = {name: len(expected) for name, expected in EXPECTED.items()}
        if implementation == "uwsgi_mules":
            counts["signal"] = 1
        wait_for(workdir, counts)
        log = server.log_text()
    modules = {r["module"] for r in read(workdir, "mule")}
    assert modules == {"uwsgidecorators" if implementation == "uwsgidecorators" else "uwsgi_mules.decorators"}
    return summary(workdir), log


@pytest.mark.real
def test_real_module_and_ours_run_the_same_functions_in_the_same_mules(tmp_path: Path) -> None:
    require_real_uwsgi()
    original, original_log = run_app(tmp_path / "original", "uwsgidecorators")
    assert original == {**EXPECTED, "signal": SIGNAL_ORIGINAL}, original_log[-4000:]
    ours, ours_log = run_app(tmp_path / "ours", "uwsgi_mules")
    assert ours == {**original, "signal": SIGNAL_OURS}, ours_log[-4000:]


@pytest.mark.real
def test_offloads_to_a_looping_mule_run_and_skip_the_loop_function(tmp_path: Path) -> None:
    require_real_uwsgi()
    workdir = tmp_path / "ours"
    workdir.mkdir()
    # the offloaded functions are registered in the mules by importing their module in the master
    with boot(workdir, "uwsgi_mules", ("--import", "tests.real.mule_loops.offloads")) as server:
        assert call(server, "tests.real.mule_loops.offloads:send_offloads") == [True, True]
        assert call(server, f"{APP}:send_messages") == [True, True, None, None, None]
        wait_for(workdir, {"offloaded": 2, "mulemsg": 2, "farm": 2, "signal": 1})
        log = server.log_text()
    offloaded = sorted((r["mule"], r["tag"]) for r in read(workdir, "offloaded"))
    assert offloaded == [(5, "o5"), (6, "of")], log[-4000:]
    assert summary(workdir) == {**EXPECTED, "signal": SIGNAL_OURS}  # the loops saw only the raw messages


@pytest.fixture
def fake_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from uwsgi_mules.testing.dropin import install_dropin

    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    monkeypatch.setenv("MULE_LOOPS_PARK", "0")
    reset_runtime()
    with install_dropin(mules=mule_app.MULES, farms=mule_app.FARMS, workers=1) as dropin:
        yield dropin
    reset_runtime()
    reset_backends()
    reset_decorators()


def test_the_same_app_on_the_fake(fake_app: Any, tmp_path: Path) -> None:
    """On the fake nothing blocks: ``@mulemsg`` / ``@farm`` get the
    messages their mule receives (``run_pending``), ``@muleloop`` runs one
    iteration per post-fork call."""
    app = fake_app.load(APP)  # imported as the master, then every process "forked"
    fake = fake_app.fake
    with fake.as_worker(1):
        assert app.send_messages() == [True, True, None, None, None]
    assert fake.run_pending() == 0  # raw messages: handled by the loops, no offloads
    fake.deliver_signals()
    fake.simulate_fork()  # a second fork: @mule and one @muleloop iteration again
    got = summary(tmp_path)
    assert got == {**EXPECTED, "signal": SIGNAL_OURS, "mule": [(1, None), (1, None)], "muleloop": [(4, 1), (4, 2)]}
    assert fake.task_errors == []


def test_offloads_and_raw_messages_on_the_fake(fake_app: Any, tmp_path: Path) -> None:
    fake_app.load(APP)
    fake = fake_app.fake
    from .mule_loops import offloads

    with fake.as_worker(1):
        assert offloads.send_offloads() == [True, True]
    assert fake.run_pending() == 2
    assert sorted((r["mule"], r["tag"]) for r in read(tmp_path, "offloaded")) == [(5, "o5"), (6, "of")]
    assert read(tmp_path, "mulemsg") == [] and read(tmp_path, "farm") == []
