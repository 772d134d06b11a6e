"""A replay cut by the death of the replaying mule goes on where it stopped
(real uWSGI): every task counted by id, none run twice."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from uwsgi_mules import envelope
from uwsgi_mules.mule.delivery.backlog import SavedOffload, save

from .test_reload_delivery import count, make_server, report, wait_for

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

APP = "tests.real.delivery_apps.app"


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def test_a_mule_killed_in_the_middle_of_a_replay_sends_nothing_twice(workdir: Path) -> None:
    """2,000 saved offloads: more than the mule's queue holds, so the mule
    replays them between tasks; task 500 kills it (SIGKILL). The respawned
    mule takes the claim over and goes on after the entries already sent."""
    backlog = workdir / "backlog"
    total, killer = 2000, 500

    def entry(i: int) -> SavedOffload:
        if i == killer:
            path = f"{APP}:crash_once_no_retries"
            return SavedOffload(1, envelope.pack(path, (i,), {}, 1), path)
        path = f"{APP}:work"
        return SavedOffload(1, envelope.pack(path, (i, 0), {}, 1), path)

    save(backlog, [entry(i) for i in range(total)])
    server = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog)})
    with server:
        wait_for(lambda: len(count(workdir)) >= total - 1, 90)
        time.sleep(1.0)  # a duplicate would show up here
        done = count(workdir)
        log = server.log_text()
    lost, duplicated = report("mule killed mid-replay", total, done, range(total))
    assert count(workdir, "crash_no_retries_attempt") == collections.Counter({killer: 1}), log[-3000:]
    assert f"died while running {APP}:crash_once_no_retries" in log, log[-3000:]
    assert "handled before a crash skipped" in log, "the killed mule was replaying: " + log[-3000:]
    assert lost == [killer], f"lost {lost[:20]} (only the task that killed the mule, named)\n{log[-3000:]}"
    assert not duplicated, f"duplicated {duplicated[:20]}"
    assert not list(backlog.glob("*.backlog")) and not list(backlog.glob("*.claimed-*"))
