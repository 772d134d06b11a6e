"""Periodic entries on real uWSGI (binary; binary + plugin in the tox env
plugin; pyuwsgi), due every second, counted by due time from the ledger
the runs append to (tests/real/periodic_apps/app.py).

* across a graceful reload, a chain reload, a mules reload and a SIGKILL
  of the scheduling mule, with catch_up="all": every due time from the
  first run to the last runs exactly once (0 missed, 0 doubled);
* the scheduling mule killed (SIGKILL) right after recording "T, sending",
  before the send or once it returned (deterministic: the app kills it at
  its 4th send): T runs once, sent again by the successor (0 missed,
  0 doubled, no "may not have run" line);
* a stop of a few seconds and a start, once per catch_up policy: the due
  times missed while stopped (after the last one recorded at the stop, up
  to the moment the new scheduler took over, which it logs) run never,
  once (the latest) or each, and every later one once.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import UwsgiServer, plugin_path
from uwsgi_mules.mule import script_path
from uwsgi_mules.periodic.leader import holder_pid
from uwsgi_mules.periodic.state import StateFile

pytestmark = [pytest.mark.real, pytest.mark.plugin]

APP = "tests.real.periodic_apps.app"
ENTRY = f"{APP}:beat"
TAKEOVER = re.compile(r"periodic: mule \d+ \(pid \d+\) took over the schedule at (\d+\.\d+)")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def make_server(workdir: Path, extra: list[str] = (), env: dict[str, str] | None = None,  # type: ignore[assignment]
                lazy: bool = False) -> UwsgiServer:
    mule = script_path() if lazy else "uwsgi_mules.mule:run"  # uWSGI 2.0 crashes callable-form mules under lazy-apps
    args = ["--module", f"{APP}:application", "--processes", "1", f"--mule={mule}", f"--mule={mule}",
            "--mule-reload-mercy", "10", *extra]
    plugin = plugin_path()
    if plugin:
        args = ["--plugin", plugin, *args]
    backlog = workdir / "backlog"
    backlog.mkdir(mode=0o700, exist_ok=True)
    environment = {"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime"), "UWSGIMULES_BACKLOG_DIR": str(backlog),
                   "UWSGIMULES_TASK_MODULES": APP}
    environment.update(env or {})
    return UwsgiServer(workdir, args, env=environment)


def ledger(workdir: Path) -> list[float]:
    try:
        text = (workdir / "periodic.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line)["due"] for line in text.split("\n")[:-1] if line]


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def takeovers(log: str) -> list[float]:
    return [float(m) for m in TAKEOVER.findall(log)]


def check_every_second_once(dues: list[float], title: str) -> None:
    counts = Counter(dues)
    span = range(int(min(dues)), int(max(dues)) + 1)
    missed = [d for d in span if d not in counts]
    doubled = sorted(d for d, n in counts.items() if n > 1)
    print(f"\n{title}: {len(span)} due times, runs {len(dues)}, missed {len(missed)}, doubled {len(doubled)}")
    assert not missed and not doubled, (missed, doubled)


def touch(path: Path) -> None:
    time.sleep(1.1)  # uWSGI checks touch files by mtime, in whole seconds
    os.utime(path, None)


EVENTS = ["touch-reload", "chain reload", "touch-mules-reload", "SIGKILL of the scheduling mule"]


@pytest.mark.parametrize("event", EVENTS)
def test_no_due_time_missed_or_doubled(workdir: Path, event: str) -> None:
    trigger = workdir / "deploy.touch"
    trigger.write_text("0")
    extra = {"touch-reload": ["--touch-reload", str(trigger)],
             "chain reload": ["--lazy-apps", "--touch-chain-reload", str(trigger), "--touch-mules-reload", str(trigger)],
             "touch-mules-reload": ["--touch-mules-reload", str(trigger)]}.get(event, [])
    server = make_server(workdir, extra, lazy=event == "chain reload")
    with server:
        assert wait_for(lambda: len(ledger(workdir)) >= 3, 30), server.log_text()[-3000:]
        if event.startswith("SIGKILL"):
            pid = holder_pid(workdir / "backlog")
            assert pid, "the scheduler lock names its holder"
            os.kill(pid, signal.SIGKILL)
        else:
            touch(trigger)
        after = time.time()
        assert wait_for(lambda: len(takeovers(server.log_text())) >= 2, 40), server.log_text()[-3000:]
        assert wait_for(lambda: sum(d > after + 2 for d in ledger(workdir)) >= 3, 40), server.log_text()[-3000:]
        log = server.log_text()
    check_every_second_once(ledger(workdir), f"every 1 s, catch_up=all, {event}")
    assert "may not have run" not in log


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_scheduler_killed_while_sending_runs_the_due_time_once(workdir: Path, when: str) -> None:
    killed = workdir / "killed-in-send"
    with make_server(workdir, env={"PERIODIC_KILL_IN_SEND": when}) as server:
        assert wait_for(killed.exists, 30), server.log_text()[-3000:]
        due = float(killed.read_text() or "0") if wait_for(lambda: bool(killed.read_text()), 5) else 0.0
        after = time.time()
        assert wait_for(lambda: len(takeovers(server.log_text())) >= 2, 40), server.log_text()[-3000:]
        assert wait_for(lambda: sum(d > after + 2 for d in ledger(workdir)) >= 3, 40), server.log_text()[-3000:]
        log = server.log_text()
    dues = ledger(workdir)
    check_every_second_once(dues, f"every 1 s, catch_up=all, the scheduler killed {when} the send of {due}")
    assert Counter(dues)[due] == 1
    assert "may not have run" not in log
    assert "the scheduling process died while sending the run due" in log
    if when == "after":  # both copies went out: the second one is skipped
        assert "already ran; this copy (sent again by the scheduler that took over) is skipped" in log


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_stop_and_start_catch_up(workdir: Path, policy: str) -> None:
    env = {"PERIODIC_CATCH_UP": policy}
    with make_server(workdir, env=env) as server:
        assert wait_for(lambda: len(ledger(workdir)) >= 3, 30), server.log_text()[-3000:]
    stopped_due = StateFile(workdir / "backlog", print).read()[ENTRY].due
    time.sleep(3)  # with the start, 4 or more due times pass while stopped
    with make_server(workdir, env=env) as server:
        assert wait_for(lambda: bool(takeovers(server.log_text())), 30), server.log_text()[-3000:]
        took_over = takeovers(server.log_text())[0]
        assert wait_for(lambda: sum(d > took_over for d in ledger(workdir)) >= 3, 30), server.log_text()[-3000:]
        log = server.log_text()
    dues = ledger(workdir)
    before = [d for d in dues if d <= stopped_due]
    missed_span = [float(d) for d in range(int(stopped_due) + 1, math.floor(took_over) + 1)]
    caught_up = [d for d in dues if stopped_due < d <= took_over]
    on_time = [d for d in dues if d > took_over]
    expected = {"skip": [], "latest": missed_span[-1:], "all": missed_span}[policy]
    print(f"\ncatch_up={policy}: {len(missed_span)} due times missed while stopped, {len(caught_up)} run for them "
          f"(expected {len(expected)}), {len(on_time)} on time after")
    check_every_second_once(before, f"catch_up={policy}, before the stop")
    check_every_second_once(on_time, f"catch_up={policy}, after the start")
    assert len(missed_span) >= 3
    assert sorted(caught_up) == expected
    assert min(on_time) == math.floor(took_over) + 1
    if policy != "all":
        assert f"{len(missed_span) - len(expected)} missed due time(s) not run (catch_up={policy})" in log
