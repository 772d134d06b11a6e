"""The read model from an instance's files (no server): running task, waiting
calls, dead tasks, heartbeat counters and per-task quantiles; the metrics
parsed by Prometheus' own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.instance_files import SCRIPT, make_instance, write_beat
from uwsgi_mules.monitor import InstanceSources, Tracker, take_snapshot
from uwsgi_mules.monitor.snapshot import quantile


def test_snapshot_reads_every_file_source(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    make_instance(runtime, dead=2, waiting=3)
    write_beat(runtime)
    snap = take_snapshot(InstanceSources(runtime_dir=runtime), Tracker())
    mule = snap.mule(1)
    assert mule is not None and mule.idle is False
    assert mule.running is not None and mule.running.path == "tests.t:slow"
    assert mule.waiting == 3 and mule.next_due == 2_000_000_000.0
    assert mule.counters == {"ran": 5, "failed": 1, "rejected": 0, "unregistered": 0, "unhandled": 0, "dead": 2}
    assert [w.count for w in snap.waiting] == [3]
    assert len(snap.dead) == 2 and snap.dead[0].died_at >= snap.dead[1].died_at
    assert SCRIPT in snap.dead[0].error and snap.dead[0].target == "mule 1"
    slow = next(t for t in snap.tasks if t.path == "tests.t:slow")
    assert (slow.runs, slow.failures, slow.window) == (4, 1, 4)
    assert (slow.p50, slow.max) == (0.1, 0.3)
    assert next(t for t in snap.tasks if t.path == "tests.t:boom").dead == 2
    # without the stats server: the queue counters are said to be unknown
    assert any("queue depth" in why and "no stats server" in why for why in snap.unknown)
    assert snap.problems == []


def test_a_forged_record_is_not_read_and_named(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    make_instance(runtime, dead=1, waiting=0)
    record = next((runtime / "dead").glob("*.dead"))
    record.write_bytes(record.read_bytes().replace(b"boom", b"bomb"))
    snap = take_snapshot(InstanceSources(runtime_dir=runtime))
    assert snap.dead == []
    assert any("not read" in line for line in snap.problems)


def test_a_missing_runtime_dir_is_said(tmp_path: Path) -> None:
    snap = take_snapshot(InstanceSources(runtime_dir=tmp_path / "nope"))
    assert snap.mules == [] and any("no runtime directory" in why for why in snap.unknown)


def test_quantiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (quantile(values, 0.5), quantile(values, 0.9), quantile(values, 0.99)) == (50.0, 90.0, 99.0)
    assert quantile([], 0.5) is None


def test_metrics_parse_with_prometheus_parser(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason="the monitor extra is not installed in this env")
    from prometheus_client.parser import text_string_to_metric_families

    from uwsgi_mules.monitor.metrics import exposition

    runtime = tmp_path / "rt"
    make_instance(runtime)
    write_beat(runtime)
    text = exposition(lambda: take_snapshot(InstanceSources(runtime_dir=runtime))).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("uwsgi_mules_dead_tasks", ())] == 2
    assert samples[("uwsgi_mules_mule_waiting_calls", (("mule", "1"),))] == 3
    assert samples[("uwsgi_mules_mule_busy", (("mule", "1"),))] == 1
    assert samples[("uwsgi_mules_mule_messages_total", (("mule", "1"), ("outcome", "ran")))] == 5
    assert samples[("uwsgi_mules_task_runs_total", (("task", "tests.t:slow"),))] == 4
    assert samples[("uwsgi_mules_task_duration_seconds", (("quantile", "0.5"), ("task", "tests.t:slow")))] == 0.1
    assert families["uwsgi_mules_mule_messages"].type == "counter"


def test_task_labels_are_bounded() -> None:
    from uwsgi_mules.monitor.model import TaskStats

    pytest.importorskip("prometheus_client", reason="the monitor extra is not installed in this env")
    from uwsgi_mules.monitor.metrics import bounded_tasks

    tasks = [TaskStats(f"m:t{i}", runs=i, failures=0, window=0) for i in range(50)]
    labels = bounded_tasks(tasks, limit=20)
    assert len(labels) == 21 and labels[-1][0] == "other" and len(labels[-1][1]) == 30
    assert labels[0][0] == "m:t49"
