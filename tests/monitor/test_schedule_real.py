"""The schedule on real uWSGI: an entry due every second shows in the read
model, the mounted page's /api/snapshot, /metrics and ``uwsgi-mules stats``
with its next due time and the outcome "sent", and its runs are in the ledger."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitor.instance import Instance, monitored_instance, wait_for

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded where the env built one

ENTRY = "tests.monitor.periodic_tasks:heartbeat"


@pytest.fixture
def periodic_instance(tmp_path: Path) -> Iterator[Instance]:
    from tests.conftest import require_real_uwsgi

    require_real_uwsgi()
    with monitored_instance(tmp_path, periodic=True) as running:
        yield running


def _sent_row(instance: Instance) -> dict[str, Any] | None:
    rows = instance.api("api/snapshot")["schedule"]
    return rows[0] if rows and rows[0]["outcome"] == "sent" and rows[0]["sent_at"] else None


def test_an_entry_due_every_second_shows_its_next_due_time_and_outcome(periodic_instance: Instance,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    instance = periodic_instance
    row = wait_for(lambda: _sent_row(instance), what="the entry's first run sent, in /api/snapshot")
    looked_at = time.time()
    assert row["entry"] == ENTRY and row["schedule"] == "every:1" and row["sending"] is False
    assert row["next_due"] is not None and row["next_due"] % 1 == 0 and row["last_due"] % 1 == 0
    assert row["last_due"] < row["next_due"] <= looked_at + 2
    assert row["sent_at"] >= row["last_due"]
    wait_for(lambda: instance.ledger().count("heartbeat ran") >= 2, what="two runs in the ledger")
    later = wait_for(lambda: (r := _sent_row(instance)) and r["last_due"] > row["last_due"] and r,
                     what="the last due time moves on")
    print(f"row {row}\nlater {later}\nledger runs {instance.ledger().count('heartbeat ran')}")
    snap = instance.snapshot()
    assert [e.entry for e in snap.schedule] == [ENTRY] and snap.schedule_dir == str(instance.runtime)
    if _has_prometheus():
        metrics = instance.server.get("/mules/metrics").decode()
        assert f'uwsgi_mules_periodic_next_due_timestamp_seconds{{entry="{ENTRY}"}}' in metrics
        assert f'uwsgi_mules_periodic_last_due_timestamp_seconds{{entry="{ENTRY}"}}' in metrics
    if instance.plugin:  # uwsgi-mules stats needs the queue counters
        from uwsgi_mules.cli import main

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("UWSGIMULES_RUNTIME_DIR", str(instance.runtime))
            assert main(["stats", instance.stats]) == 0
        out = capsys.readouterr().out
        assert "periodic tasks: 1 " in out and f"{ENTRY}  [every:1]  next " in out and "'sent'" in out


def _has_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True
