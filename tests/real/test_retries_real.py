"""Retries on exceptions, run-later and dead tasks on real uWSGI (the tox
``plugin`` env reruns them with the plugin loaded). Every task is counted by
id; the times come from the mule's clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.contract.harness import plugin_path
from tests.real.test_reload_delivery import read_done, wait_for
from tests.support.server import UwsgiServer

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

APP = "tests.real.retry_apps.app:application"
SERVE = "uwsgi_mules.mule:run"


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def make_server(workdir: Path, extra: list[str] = (), env: dict[str, str] | None = None,  # type: ignore[assignment]
                die_on_term: bool = True) -> UwsgiServer:
    args = ["--module", APP, "--processes", "2", f"--mule={SERVE}", "--mule-reload-mercy", "20", *extra]
    plugin = plugin_path()
    if plugin:
        args = ["--plugin", plugin, *args]
    environment = {"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime")}
    environment.update(env or {})
    return UwsgiServer(workdir, args, env=environment, die_on_term=die_on_term)


def runs(workdir: Path, kind: str) -> dict[int, list[tuple[int, float]]]:
    """id -> [(attempt, time)] of every run of ``kind``."""
    found: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for record in read_done(workdir):
        if record["kind"] == kind:
            found[int(record["id"])].append((int(record["attempt"]), float(record["at"])))  # type: ignore[arg-type]
    return found


def offload(server: UwsgiServer, query: str) -> tuple[int, float]:
    sent, sent_at = server.get(f"/?{query}").decode().split()
    return int(sent), float(sent_at)


def dead_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "uwsgi_mules.cli", "dead", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_retry_on_with_backoff_dead_tasks_and_resend(workdir: Path) -> None:
    runtime = workdir / "runtime"
    server = make_server(workdir)
    with server:
        assert offload(server, "task=flaky&n=3&start=0")[0] == 3
        assert offload(server, "task=until_fixed&n=1&start=10")[0] == 1
        assert offload(server, "task=wrong_error&n=1&start=20")[0] == 1
        assert wait_for(lambda: sum(len(v) for v in runs(workdir, "flaky").values()) >= 9, 30), server.log_text()[-3000:]
        assert wait_for(lambda: "DEAD task" in server.log_text(), 30), server.log_text()[-3000:]
        time.sleep(1.5)  # a retry of wrong_error or a fourth flaky run would show up here
        flaky = runs(workdir, "flaky")
        until_fixed = runs(workdir, "until_fixed")
        wrong = runs(workdir, "wrong_error")
        log = server.log_text()
        listing = dead_cli("--dir", str(runtime))
        (workdir / "fixed").write_text("the service is back")
        resent = dead_cli("--dir", str(runtime), "--resend-all")
        assert wait_for(lambda: len(runs(workdir, "until_fixed")[10]) == 4, 30), server.log_text()[-3000:]
        time.sleep(1.0)
        after = runs(workdir, "until_fixed")
        final_log = server.log_text()
        remaining = dead_cli("--dir", str(runtime))
    gaps = {i: [round(b[1] - a[1], 2) for a, b in zip(r, r[1:])] for i, r in flaky.items()}
    print(f"\nflaky x3 (fails twice, retry_backoff=1): runs {dict(Counter({i: len(r) for i, r in flaky.items()}))}, "
          f"gaps {gaps}; until_fixed: {len(until_fixed[10])} runs then dead; wrong_error: {len(wrong[20])} run; "
          f"after re-send: {len(after[10])} runs")
    assert {i: [a for a, _ in r] for i, r in flaky.items()} == {0: [1, 2, 3], 1: [1, 2, 3], 2: [1, 2, 3]}
    assert all(g[0] >= 1.0 and g[1] >= 2.0 for g in gaps.values()), gaps
    assert [a for a, _ in until_fixed[10]] == [1, 2, 3], "1 run + 2 retries"
    assert log.count("DEAD task") == 1, log[-3000:]
    assert "DEAD task tests.real.retry_apps.app:until_fixed(*(10,)" in log
    assert [a for a, _ in wrong[20]] == [1], "an error outside retry_on runs once"
    assert "tests.real.retry_apps.app:until_fixed(*(10,)" in listing and "1 dead task(s)" in listing, listing
    assert "TimeoutError: 10: the service is down" in listing
    assert "1 dead task(s) queued" in resent, resent
    assert [a for a, _ in after[10]] == [1, 2, 3, 1], "re-sent once, attempts reset, succeeds"
    assert final_log.count("DEAD task") == 1
    assert "0 dead task(s)" in remaining


def test_a_retry_policy_error_is_a_dead_task_not_a_dead_mule(workdir: Path) -> None:
    """The policy itself raises while deciding (its retry_on check fails):
    one DEAD task line, a dead record, and the mule keeps running the next calls."""
    with make_server(workdir) as server:
        assert offload(server, "task=policy_fails&n=1&start=0")[0] == 1
        assert offload(server, "task=later&n=3&start=1")[0] == 3
        assert wait_for(lambda: len(runs(workdir, "later")) >= 3, 30), server.log_text()[-3000:]
        time.sleep(1.0)  # a retry or a respawn would show up here
        log = server.log_text()
        listing = dead_cli("--dir", str(workdir / "runtime"))
    failed = runs(workdir, "policy_fails")
    print(f"\npolicy_fails: {len(failed[0])} run(s); later: {sorted(runs(workdir, 'later'))}; "
          f"DEAD lines {log.count('DEAD task')}, respawns {log.count('respawned')}")
    assert [a for a, _ in failed[0]] == [1]
    assert sorted(runs(workdir, "later")) == [1, 2, 3]
    assert log.count("DEAD task") == 1 and "its retry policy failed (RuntimeError" in log, log[-3000:]
    assert "died" not in log and "respawned" not in log, log[-3000:]
    assert "policy_fails(*(0,)" in listing and "1 dead task(s)" in listing, listing


EVENTS = ["touch-reload", "touch-mules-reload", "mule SIGKILL"]


@pytest.mark.parametrize("event", EVENTS)
def test_offload_in_survives_and_never_runs_early(workdir: Path, event: str) -> None:
    touch = workdir / "touch.me"
    touch.write_text("0")
    extra = {"touch-reload": ["--touch-reload", str(touch)],
             "touch-mules-reload": ["--touch-mules-reload", str(touch)]}.get(event, [])
    server = make_server(workdir, extra)
    total = 20
    with server:
        assert offload(server, "task=work&n=1&start=1000&ms=0")[0] == 1
        assert wait_for(lambda: 1000 in runs(workdir, "work"), 20)
        mule_pid = next(int(r["pid"]) for r in read_done(workdir) if r["kind"] == "work")  # type: ignore[arg-type]
        sent, sent_at = offload(server, f"task=later&n={total}&start=0&in=4")
        assert sent == total
        time.sleep(1.2)
        if event == "mule SIGKILL":
            os.kill(mule_pid, signal.SIGKILL)
        else:
            os.utime(touch, None)
        # other work is served while the calls wait
        assert wait_for(lambda: offload(server, "task=work&n=5&start=0&ms=0")[0] == 5, 30)
        assert wait_for(lambda: len(runs(workdir, "work")) >= 6, 30), server.log_text()[-3000:]
        assert wait_for(lambda: len(runs(workdir, "later")) >= total, 30), server.log_text()[-3000:]
        time.sleep(1.0)  # a duplicate would show up here
        later = runs(workdir, "later")
        log = server.log_text()
    early = {i: round(r[0][1] - sent_at, 2) for i, r in later.items() if r[0][1] < sent_at + 4}
    lost = sorted(set(range(total)) - set(later))
    duplicated = sorted(i for i, r in later.items() if len(r) > 1)
    delays = [r[0][1] - sent_at for r in later.values()]
    print(f"\noffload_in(4) x{total} across {event}: sent {sent}, executed {sum(len(r) for r in later.values())}, "
          f"lost {len(lost)}, duplicated {len(duplicated)}, early {len(early)}, "
          f"ran {min(delays):.2f}..{max(delays):.2f}s after sending")
    assert not lost and not duplicated, log[-4000:]
    assert not early, early


def test_offload_in_survives_stop_and_start_with_a_backlog_dir(workdir: Path) -> None:
    backlog = workdir / "backlog"
    total = 20
    first = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog)}, die_on_term=False)
    with first:
        sent, sent_at = offload(first, f"task=later&n={total}&start=0&in=6")
        time.sleep(1.0)
        os.kill(first.process.pid, signal.SIGINT)  # type: ignore[union-attr]
        first.process.wait(60)  # type: ignore[union-attr]
        stop_log = first.log_text()
    assert not runs(workdir, "later"), "nothing ran before its time"
    assert list(backlog.glob("*.backlog")), stop_log[-3000:]
    second = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog)})
    second.log_path = workdir / "uwsgi-second.log"
    with second:
        assert wait_for(lambda: len(runs(workdir, "later")) >= total, 30), second.log_text()[-3000:]
        time.sleep(1.0)
        later = runs(workdir, "later")
    lost = sorted(set(range(total)) - set(later))
    duplicated = sorted(i for i, r in later.items() if len(r) > 1)
    early = [i for i, r in later.items() if r[0][1] < sent_at + 6]
    print(f"\noffload_in(6) x{total} across a stop and a start: sent {sent}, executed "
          f"{sum(len(r) for r in later.values())}, lost {len(lost)}, duplicated {len(duplicated)}, early {len(early)}")
    assert not lost and not duplicated and not early, stop_log[-3000:]
