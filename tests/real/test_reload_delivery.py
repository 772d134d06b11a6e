"""Every offload that returned True runs, across reloads, stops and crashes
(real uWSGI; the tox ``plugin`` env reruns it with the plugin loaded).

Each test counts tasks by id: sent, executed, lost, duplicated, and prints them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import plugin_path
from tests.support.server import UwsgiServer
from uwsgi_mules.mule import script_path

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

APP = "tests.real.delivery_apps.app:application"
SERVE = "uwsgi_mules.mule:run"


def read_done(workdir: Path) -> list[dict[str, object]]:
    """Lines mules appended to done.jsonl; a half-written last line is not read yet."""
    try:
        data = (workdir / "done.jsonl").read_text()
    except FileNotFoundError:
        return []
    lines = data.split("\n")
    return [json.loads(line) for line in lines[:-1] if line]  # the last piece has no newline yet


def count(workdir: Path, kind: str = "work") -> Counter[int]:
    return Counter(int(r["id"]) for r in read_done(workdir) if r["kind"] == kind)  # type: ignore[arg-type]


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def report(title: str, sent: int, done: Counter[int], expected: range) -> tuple[list[int], list[int]]:
    lost = sorted(set(expected) - set(done))
    duplicated = sorted(i for i, n in done.items() if n > 1)
    print(f"\n{title}: sent {sent}, executed {sum(done.values())}, lost {len(lost)}, duplicated {len(duplicated)}")
    return lost, duplicated


def make_server(workdir: Path, extra: list[str] = (), env: dict[str, str] | None = None,  # type: ignore[assignment]
                die_on_term: bool = True) -> UwsgiServer:
    # uWSGI 2.0 crashes callable-form mules under lazy-apps: the script form then
    mule = script_path() if "--lazy-apps" in extra else SERVE
    args = ["--module", APP, "--processes", "2", f"--mule={mule}", "--mule-reload-mercy", "20", *extra]
    plugin = plugin_path()
    if plugin:
        args = ["--plugin", plugin, *args]
    environment = {"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime")}
    environment.update(env or {})
    return UwsgiServer(workdir, args, env=environment, die_on_term=die_on_term)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def send(server: UwsgiServer, n: int, start: int = 0, ms: int = 20) -> int:
    return int(server.get(f"/?task=work&n={n}&start={start}&ms={ms}"))


RELOADS = {
    "touch-reload": (["--touch-reload", "{touch}"], True),
    "SIGHUP": ([], True),
    "SIGTERM without die-on-term": ([], False),
    "touch-mules-reload": (["--touch-mules-reload", "{touch}"], True),
    "lazy-apps SIGHUP": (["--lazy-apps"], True),
}


@pytest.mark.parametrize("event", list(RELOADS))
def test_reload_loses_nothing(workdir: Path, event: str) -> None:
    touch = workdir / "touch.me"
    touch.write_text("0")
    extra, die_on_term = RELOADS[event]
    if event == "lazy-apps SIGHUP":  # lazy-apps mules do not load the app: list the task module
        env = {"UWSGIMULES_TASK_MODULES": "tests.real.delivery_apps.app"}
    else:
        env = {}
    server = make_server(workdir, [a.format(touch=touch) for a in extra], env, die_on_term)
    total = 250
    with server:
        sent = send(server, total)
        assert sent == total
        wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
        master = server.process.pid  # type: ignore[union-attr]
        if event in ("touch-reload", "touch-mules-reload"):
            time.sleep(1.1)  # mtime resolution of the touch check
            os.utime(touch, None)
        elif event == "SIGTERM without die-on-term":
            os.kill(master, signal.SIGTERM)
        else:
            os.kill(master, signal.SIGHUP)
        wait_for(lambda: len(count(workdir)) >= total, 90)
        time.sleep(0.5)  # a duplicate would show up here
        done = count(workdir)
        lost, duplicated = report(f"{event} with {total} tasks of 20 ms queued", sent, done, range(total))
        log = server.log_text()
    assert "saved" in log or event == "touch-mules-reload" or not lost, log[-3000:]
    assert not lost, f"lost {lost[:20]}...\n{log[-4000:]}"
    assert not duplicated, f"duplicated {duplicated[:20]}"


def test_stop_and_start_with_backlog_dir_loses_nothing(workdir: Path) -> None:
    backlog = workdir / "backlog"
    total = 250
    first = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog)}, die_on_term=False)
    with first:
        sent = send(first, total)
        wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
        os.kill(first.process.pid, signal.SIGINT)  # type: ignore[union-attr]
        first.process.wait(60)  # type: ignore[union-attr]
        stop_log = first.log_text()
    ran_before = sum(count(workdir).values())
    assert ran_before < total, "the stop came too late to test anything"
    assert list(backlog.glob("*.backlog")), stop_log[-3000:]
    second = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog)})
    second.log_path = workdir / "uwsgi-second.log"
    with second:
        wait_for(lambda: len(count(workdir)) >= total, 60)
        time.sleep(0.5)
        done = count(workdir)
        lost, duplicated = report(f"stop (SIGINT) after {ran_before} ran, then start", sent, done, range(total))
    assert not lost and not duplicated, stop_log[-3000:]
    assert not list(backlog.glob("*.backlog")), "the replayed backlog file is removed"


def test_stop_without_backlog_dir_says_what_it_discarded(workdir: Path) -> None:
    server = make_server(workdir)
    with server:
        send(server, 100, ms=50)
        wait_for(lambda: sum(count(workdir).values()) >= 2, 10)
        os.kill(server.process.pid, signal.SIGINT)  # type: ignore[union-attr]
        server.process.wait(60)  # type: ignore[union-attr]
        log = server.log_text()
    ran = sum(count(workdir).values())
    line = next((ln for ln in log.splitlines() if "discarded" in ln and "ERROR" in ln), "")
    print(f"\nstop without a backlog dir: {ran} ran; log: {line}")
    assert f"discarded {100 - ran} queued offload(s)" in line
    assert "tests.real.delivery_apps.app:work" in line


def test_crash_names_the_task_and_retries_rerun_it(workdir: Path) -> None:
    server = make_server(workdir)
    with server:
        assert int(server.get("/?task=crash_first&n=3&start=0")) == 3
        assert wait_for(lambda: len(count(workdir, "crash_first")) == 3, 60), server.log_text()[-3000:]
        assert int(server.get("/?task=crash_once_no_retries&n=1&start=7")) == 1
        assert int(server.get("/?task=always_crash&n=1&start=9")) == 1
        assert wait_for(lambda: "DEAD task" in server.log_text(), 60), server.log_text()[-3000:]
        assert int(server.get("/?task=work&n=5&start=100&ms=1")) == 5
        assert wait_for(lambda: len(count(workdir)) == 5, 30), "the mule keeps serving after a dead task"
        log = server.log_text()
    done = count(workdir, "crash_first")
    print(f"\ncrash_first x3 with retries=2: executed {dict(done)}")
    assert done == Counter({0: 1, 1: 1, 2: 1})
    assert "died while running tests.real.delivery_apps.app:crash_once_no_retries(*(7,)" in log
    assert "the task is lost" in log
    attempts = count(workdir, "always_crash_attempt")
    assert attempts == Counter({9: 3}), "1 run + 2 retries, then dead (no respawn loop)"
    assert log.count("DEAD task tests.real.delivery_apps.app:always_crash(*(9,)") == 1


def test_mule_harakiri_stops_a_long_task_and_names_it(workdir: Path) -> None:
    server = make_server(workdir, ["--mule-harakiri", "1"])
    with server:
        assert int(server.get("/?task=sleep_long&n=1&start=1&seconds=5.0")) == 1
        assert wait_for(lambda: "HARAKIRI ON MULE 1" in server.log_text(), 20), server.log_text()[-3000:]
        assert wait_for(lambda: "died while running tests.real.delivery_apps.app:sleep_long" in server.log_text(), 20)
        assert int(server.get("/?task=work&n=3&start=0&ms=1")) == 3
        assert wait_for(lambda: len(count(workdir)) == 3, 30)
    assert not count(workdir, "sleep_long"), "the long task was stopped"


def test_chain_reload_rendered_by_section_reloads_mules_and_keeps_offloads(workdir: Path) -> None:
    from uwsgi_mules.config import Section

    touch = workdir / "deploy.touch"
    touch.write_text("0")
    (workdir / "version.txt").write_text("1")
    section = Section()
    section.set_option("module", "tests.real.delivery_apps.versioned:application")
    section.set_option("processes", 2)
    section.workers.set_mules_params([script_path()])
    section.set_task_modules("tests.real.delivery_apps.versioned")
    section.set_chain_reload(touch)
    plugin = plugin_path()
    args = (["--plugin", plugin] if plugin else []) + section.as_args()
    server = UwsgiServer(workdir, args, env={"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime")})
    total = 150
    with server:
        assert server.get(f"/?n={total}").decode() == f"{total} 1"
        wait_for(lambda: sum(count(workdir, "v1").values()) >= 5, 10)
        (workdir / "version.txt").write_text("2")
        time.sleep(1.1)
        os.utime(touch, None)
        assert wait_for(lambda: len(count(workdir, "v1") + count(workdir, "v2")) >= total, 60), server.log_text()[-3000:]
        # after the deploy: the workers and the mule run version 2 (each probe uses new ids)
        probes = iter(range(1000, 100_000, 5))
        start = next(probes)
        while server.get(f"/?n=5&start={start}").decode() != "5 2":
            start = next(probes)
            time.sleep(0.2)
        assert wait_for(lambda: set(range(start, start + 5)) <= set(count(workdir, "v2")), 30)
        time.sleep(0.5)
        done = count(workdir, "v1") + count(workdir, "v2")
        done = Counter({i: n for i, n in done.items() if i < total})
        lost, duplicated = report(f"chain reload with {total} tasks queued", total, done, range(total))
        log = server.log_text()
    assert not lost and not duplicated, log[-3000:]
    assert "chain reload" in log.lower()


@pytest.mark.skipif(not plugin_path(), reason="the master saves what is left in the queues only with the C plugin "
                    "(runs in the tox env 'plugin')")
def test_plugin_master_saves_messages_left_in_the_queues(workdir: Path) -> None:
    """A signal-only mule is stopped at once by a reload: with the plugin, the
    master saves what is still queued for it, and the programmed mule of the
    new instance replays it (only the task cut mid-run is lost, named)."""
    total = 200
    server = make_server(workdir, ["--mule"])  # mule 1 programmed, mule 2 signal-only
    with server:
        assert int(server.get(f"/?task=work_on_mule2&n={total}&start=0&ms=20")) == total
        wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
        os.kill(server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
        assert wait_for(lambda: "mules_plugin: saved" in server.log_text(), 30), server.log_text()[-3000:]
        wait_for(lambda: len(count(workdir)) >= total - 1, 60)
        time.sleep(1.0)
        done = count(workdir)
        lost, duplicated = report(f"reload with {total} tasks queued for a signal-only mule (plugin)", total, done,
                                  range(total))
        log = server.log_text()
    assert len(lost) <= 1 and not duplicated, log[-3000:]
    if lost:
        assert f"died while running tests.real.delivery_apps.app:work_on_mule2(*({lost[0]}, 20)" in log


def test_reload_during_a_stream_of_offloads_loses_nothing(workdir: Path) -> None:
    """A worker is still offloading (one request streaming 5,000 tasks) when the
    reload starts: the mule keeps reading until that worker has exited."""
    import threading

    total = 5000
    server = make_server(workdir)
    result: list[int] = []
    with server:
        sender = threading.Thread(target=lambda: result.append(int(server.get(f"/?task=stream&n={total}", 120))))
        sender.start()
        wait_for(lambda: sum(count(workdir).values()) >= 200, 20, 0.01)
        os.kill(server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]
        sender.join(120)
        assert result == [total], "the request finished and every offload was accepted"
        wait_for(lambda: len(count(workdir)) >= total, 90)
        time.sleep(0.5)
        done = count(workdir)
        lost, duplicated = report(f"SIGHUP during a stream of {total} offloads", total, done, range(total))
        log = server.log_text()
    assert not lost and not duplicated, log[-3000:]
