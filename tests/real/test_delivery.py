"""Delivery guarantees on real uWSGI, with and without the C plugin
(the tox ``plugin`` env reruns this file with the plugin loaded)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.contract import tasks
from tests.contract.harness import RealHarness
from tests.support.server import plugin_path

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture
def real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealHarness]:
    require_real_uwsgi()
    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    harness = RealHarness(tmp_path)
    try:
        yield harness
    finally:
        harness.stop()


def test_100k_offloads_from_4_workers_into_1_mule_lose_nothing(real: RealHarness) -> None:
    real.start([SERVE], processes=4)
    per_worker = 25_000
    sent = real.in_workers([(tasks.burst_tally, (per_worker, i * per_worker)) for i in range(4)])
    assert sent == [per_worker] * 4
    real.in_worker(tasks.tally_report, "tally")  # queued after every burst call returned
    (report,) = real.wait_records("tally", 1, timeout=300)
    assert report["value"]["count"] == 100_000, "lost offloads"
    assert report["value"]["sum"] == sum(range(100_000)), "duplicated or corrupted offloads"
    log = real.log_text()
    print(f"\n100k offloads from 4 workers: 'MULE MSG QUEUE IS FULL' lines: {log.count('MULE MSG QUEUE IS FULL')}")
    if plugin_path():
        # back-pressure without log floods: the plugin's writer waits, uWSGI logs nothing
        assert "MULE MSG QUEUE IS FULL" not in log
        time.sleep(1.1)  # the next send reports every worker's remaining batch
        real.in_workers([(tasks.tally, (-1,)) for _ in range(8)])
        stats = real.in_worker(tasks.mule1_stats)
        assert stats is not None
        # every offload is counted; a worker reports its last batch (< 64) with its next
        # send after a second, so a worker that got none of the 8 calls may still owe one
        assert 100_001 + 8 - 4 * 63 <= stats["sent"] <= 100_009, stats


def test_sigkilled_mule_is_respawned_and_queued_messages_survive(real: RealHarness) -> None:
    real.start([SERVE])
    total = 600
    result: list[int] = []
    import threading

    sender = threading.Thread(target=lambda: result.append(real.in_worker(tasks.send_slow, total)))
    sender.start()
    first = real.wait_records("slow", 20, timeout=60, settle=0)
    victim = first[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    sender.join(120)
    assert result == [total]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = real.records("slow")
        if done and done[-1]["value"] == total - 1:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    done = real.records("slow")
    executed = {r["value"] for r in done}
    lost = sorted(set(range(total)) - executed)
    print(f"\nmule killed mid-burst: {len(executed)} of {total} executed, lost {len(lost)}: {lost}")
    assert "respawn" in real.log_text().lower()
    assert {r["pid"] for r in done} - {victim}, "a new mule process took over"
    assert len(lost) <= 1, f"only the task being executed may be lost, lost {lost}"
