"""The read model against a known workload on real uWSGI (the binary, the
binary with the C plugin in the tox env browser, pyuwsgi): a paused mule's
depth, its running task, a waiting call's due time, a dead task, counters
that match the ledger, the mounted page's API and /metrics."""

from __future__ import annotations

import time

import pytest

from tests.monitor.instance import Instance, wait_for
from tests.monitor.tasks import INJECTED

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded where the env built one

N = 7


def test_snapshot_follows_a_known_workload(instance: Instance) -> None:
    sent_at = time.time()
    assert instance.send("later") == 1
    assert instance.send("gate") == 1
    wait_for(lambda: "gate in" in instance.ledger(), what="mule 1 entered the gate")
    assert instance.send("tally", N) == N
    snap = wait_for(lambda: (s := instance.snapshot()).mule(1) and s.mule(1).running and s, what="running task")
    mule = snap.mule(1)
    assert mule is not None and mule.running is not None
    assert mule.running.path == "tests.monitor.tasks:gate" and mule.idle is False
    assert mule.waiting == 1 and mule.next_due is not None and abs(mule.next_due - (sent_at + 3600)) < 30
    if instance.plugin:
        depth = wait_for(lambda: (q := instance.snapshot().mule(1).queue) and q.depth == N and q, what="depth N")
        assert depth.values["depth_bytes"] > 0
    else:
        assert mule.queue is None and any("queue depth" in why for why in snap.unknown)
    (instance.workdir / "open").touch()
    wait_for(lambda: instance.ledger().count("tally 6") == 1, what="tallies ran")
    snap = wait_for(lambda: (s := instance.snapshot()).mule(1).counters and s.mule(1).counters["ran"] >= N + 1 and s,
                    what="the heartbeat counts the runs")
    ran = sum(1 for line in instance.ledger() if line.startswith(("tally", "gate in")))
    print(f"sent {N + 1} (+1 waiting), ledger {ran}, mule counters {snap.mule(1).counters}")
    assert snap.mule(1).counters["ran"] == ran == N + 1
    assert snap.mule(1).running is None and snap.mule(1).idle is True
    tally = next(t for t in snap.tasks if t.path == "tests.monitor.tasks:tally")
    assert tally.runs == N and tally.failures == 0 and tally.p50 is not None


def test_a_dead_task_appears_with_its_error_and_in_the_api_and_metrics(instance: Instance) -> None:
    assert instance.send("fragile", token="d1") == 1
    snap = wait_for(lambda: (s := instance.snapshot()).dead and s, what="a dead task")
    assert [(d.path, d.attempts) for d in snap.dead] == [("tests.monitor.tasks:fragile", 2)]
    assert instance.ledger().count("fragile-failed d1") == 2
    assert INJECTED in snap.dead[0].error and "Traceback" in snap.dead[0].traceback
    data = instance.api("api/snapshot")
    assert len(data["dead"]) == 1 and "\x1b" not in data["dead"][0]["error"]
    assert data["reachable"] is True and data["plugin"] is instance.plugin
    metrics = wait_for(lambda: b"uwsgi_mules_dead_tasks 1.0" in (m := instance.server.get("/mules/metrics")) and m,
                       what="/metrics") if _has_prometheus() else None
    if metrics is not None:
        from prometheus_client.parser import text_string_to_metric_families

        names = {family.name for family in text_string_to_metric_families(metrics.decode())}
        assert {"uwsgi_mules_dead_tasks", "uwsgi_mules_mule_messages", "uwsgi_mules_stats_up"} <= names


def _has_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True
