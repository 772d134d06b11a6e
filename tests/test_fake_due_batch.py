"""A batch of due calls on the fake: it yields to a stop like any message and
does not starve the queue (tests/real/test_retries_real.py runs the same on
real uWSGI). Every call is counted by id: sent, executed, lost, duplicated, early."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import batch_tasks as tasks
from uwsgi_mules.fake import FakeUwsgi

SERVE = "uwsgi_mules.mule:run"
DUE, PLAIN, DELAY = 300, 20, 2.0


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.RUNS.clear()
    tasks.ON_DUE.clear()
    yield
    tasks.RUNS.clear()
    tasks.ON_DUE.clear()


def send_batch(fake: FakeUwsgi) -> float:
    sent_at = fake.wall_time()
    for i in range(DUE):
        assert tasks.due.offload_in(DELAY, i)
        if i % 100 == 99:
            assert fake.run_pending() == 0, "received: every call waits"
    return sent_at


def figures(sent_at: float, title: str) -> tuple[list[int], list[int], list[int]]:
    ran = Counter((kind, i) for kind, i, _ in tasks.RUNS)
    expected = {("due", i) for i in range(DUE)} | {("plain", i) for i in range(PLAIN)}
    lost = sorted(i for kind, i in expected - set(ran))
    duplicated = sorted(i for (kind, i), n in ran.items() if n > 1)
    early = sorted(i for kind, i, at in tasks.RUNS if kind == "due" and at < sent_at + DELAY)
    print(f"\n{title}: sent {DUE + PLAIN}, executed {sum(ran.values())}, lost {len(lost)}, "
          f"duplicated {len(duplicated)}, early {len(early)}")
    return lost, duplicated, early


def test_queued_offloads_are_not_starved_by_a_due_batch() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        sent_at = send_batch(fake)
        for i in range(PLAIN):
            assert tasks.plain(i)
        fake.advance(DELAY)
        fake.run_pending()
    order = [kind for kind, _, _ in tasks.RUNS]
    first_plain = order.index("plain")
    print(f"\nthe first plain offload ran after {first_plain} of {DUE} due calls")
    assert figures(sent_at, "due batch and plain offloads") == ([], [], [])
    assert first_plain < DUE // 2, "plain offloads run between bounded batches of due calls"


def test_a_stop_requested_mid_batch_saves_the_rest_and_the_queue(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        sent_at = send_batch(fake)
        for i in range(PLAIN):
            assert tasks.plain(i)
        fake.advance(DELAY)
        with fake.as_mule(1):
            loop = fake.loops.get(1)  # the mule's own loop, served here as uWSGI serves it

            def stop_at_tenth(task_id: int) -> None:
                if task_id == 9:  # uWSGI's SIGHUP arrives while the 10th due call runs
                    loop.request_stop(signal.SIGHUP)

            tasks.ON_DUE.append(stop_at_tenth)
            loop.serve()  # returns once the stop is requested
            report = loop.stop()
        ran_before_stop = len(tasks.RUNS)
        tasks.ON_DUE.clear()
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        fake.advance(DELAY + 1)
        fake.run_pending()
    print(f"\n{ran_before_stop} call(s) ran before the stop, {len(report.entries)} saved to {report.saved_to}")
    assert ran_before_stop <= 10 + PLAIN, "the batch yields to the stop between two calls"
    assert figures(sent_at, "stop requested mid-batch, then a start") == ([], [], [])
