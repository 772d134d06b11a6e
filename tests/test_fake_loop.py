"""The mule loop's own API on the fake (the object real uWSGI runs):
step, drain, duties, stop; counted by id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import batch_tasks as tasks
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.mule.loop import DUE_BATCH

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.RUNS.clear()
    yield
    tasks.RUNS.clear()


def test_step_reads_at_most_its_limit_and_drain_empties_the_queue() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(10):
            assert tasks.plain(i)
        with fake.as_mule(1):
            loop = fake.loops.get(1)
            assert loop.step(3) == 3
            assert loop.drain() == 7
            assert loop.step(5) == 0 and not loop.progressed
        assert fake.pending() == 0
    assert [i for _, i, _ in tasks.RUNS] == list(range(10))


def test_due_calls_run_in_bounded_batches_between_queued_messages() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(3 * DUE_BATCH):
            assert tasks.due.offload_in(5, i)
        fake.run_pending()
        assert tasks.plain(0)
        fake.advance(5)
        with fake.as_mule(1):
            loop = fake.loops.get(1)
            assert loop.step(1) == DUE_BATCH + 1, "one bounded batch, then the queued message"
            assert loop.drain() == 2 * DUE_BATCH
    order = [kind for kind, _, _ in tasks.RUNS]
    assert order.index("plain") == DUE_BATCH and len(order) == 3 * DUE_BATCH + 1


def test_duties_run_with_the_wall_time_when_they_asked_to() -> None:
    calls: list[float] = []

    def duty(now: float) -> float:
        calls.append(now)
        return now + 10

    with FakeUwsgi(mules=[SERVE]) as fake:
        with fake.as_mule(1):
            loop = fake.loops.get(1)
            loop.duties.append(duty)
            loop.step()
            loop.step()
            assert len(calls) == 1, "not before the time it returned"
            fake.advance(10)
            loop.step()
        assert calls == [pytest.approx(calls[0]), pytest.approx(calls[0] + 10)]


def test_stop_saves_nothing_without_a_directory_and_hands_back_what_it_keeps() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(4):
            assert tasks.plain(i)
        assert tasks.due.offload_in(60, 99)
        with fake.as_mule(1):
            loop = fake.loops.get(1)
            assert loop.step(1) == 1
            loop.request_stop()
            report = loop.stop()  # never exits the process
        assert (report.mode, report.saved_to, report.discarded) == ("reload", None, 0)
        assert len(report.kept) == 3 + 1, "the 3 offloads and the call for later still queued"
        assert fake.pending() == 0
