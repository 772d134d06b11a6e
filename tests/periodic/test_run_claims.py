"""Each due time runs once on the mule side (uwsgi_mules.periodic.claims),
on the fake: a copy of a run that already ran is skipped, a retry and a
re-sent dead task run, the markers are bounded, a run the mule cannot
recognise is not sent again, and with a lease the successor's re-send is
let through by its own instance's claim only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from uwsgi_mules import envelope
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.mule.delivery.dead import list_dead
from uwsgi_mules.periodic import Schedule, declare, forget_entries, sending
from uwsgi_mules.periodic.claims import CLAIMS_NAME, RunClaims
from uwsgi_mules.periodic.duty import duty_of
from uwsgi_mules.periodic.state import StateFile

from . import tasks
from .test_scheduler import MemoryLease, SchedulerKilled

UTC = timezone.utc
START = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
ONE = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
FLAKY = "tests.periodic.tasks:flaky"


def copy_of_the_run(fake: FakeUwsgi, due: datetime, attempt: int = 0) -> bytes:
    """What the scheduler sends for ``due`` (again: a successor's copy)."""
    meta = {"retries": 1, "periodic": [FLAKY, due.timestamp()], **({"attempt": attempt} if attempt else {})}
    return fake.signer().seal(envelope.pack(FLAKY, (), {"due": due}, 1, meta))


def test_a_retried_run_runs_a_re_sent_dead_run_runs_a_second_copy_does_not(schedule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.flaky, every=timedelta(hours=1), pass_due=True,
             offload={"retries": 1, "retry_on": (ValueError,), "retry_backoff": 1.0})
    tasks.FAILURES[0] = 2
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(START)
        fake.advance(3570)  # 13:00 sent: its first attempt fails
        fake.run_pending()
        fake.advance(30)  # the retry (attempt 2) runs, fails: a dead task
        fake.run_pending()
        [dead] = list_dead(tmp_path)
        assert "periodic" not in (envelope.unpack(dead.body).meta or {})
        fake.mule_msg(fake.signer().seal(dead.body), 1)  # what `uwsgi-mules dead --resend` leads to
        fake.run_pending()
        fake.mule_msg(copy_of_the_run(fake, ONE), 1)  # a successor scheduler's copy: 13:00 ran
        fake.run_pending()
        log = "\n".join(fake.log_lines)
    assert tasks.RUNS == [("flaky attempt", ONE)] * 3 + [("flaky", ONE)]
    assert f"periodic {FLAKY}: the run due 2026-05-01T13:00:00+00:00 already ran" in log
    assert len(list((tmp_path / CLAIMS_NAME).iterdir())) == 1


@pytest.mark.parametrize("in_memory", [False, True])
def test_the_claims_keep_the_latest_due_times_of_each_entry(tmp_path: Path, in_memory: bool) -> None:
    claims = RunClaims(None if in_memory else tmp_path, keep=3)
    assert [claims.claim("app:f", due) for due in (5.0, 1.0, 2.0, 3.0, 4.0)] == [True] * 5
    assert [claims.claim("app:f", due) for due in (3.0, 4.0, 5.0)] == [False] * 3
    assert claims.claim("app:g", 5.0) is True
    if not in_memory:
        assert sorted(p.name for p in (tmp_path / CLAIMS_NAME / "app%3Af").iterdir()) == ["3.0", "4.0", "5.0"]


def test_a_django_task_run_interrupted_in_its_send_is_not_sent_again(tmp_path: Path) -> None:
    """A run the mule cannot recognise (a Django task's enqueue) keeps at most once, logged."""
    sent: list[object] = []
    declare(None, Schedule.build(every=timedelta(minutes=1)), name="app.tasks.report", send=sent.append)
    try:
        with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
            fake.clock.set_datetime(START)
            fake.advance(60)  # 12:01 sent
            state = StateFile(tmp_path, print)
            states = state.read()
            states["app.tasks.report"].due += 60
            states["app.tasks.report"].sending = True  # the scheduler died sending 12:02
            state.write(states)()
            duty_of(fake).scheduler.take_over()
            fake.advance(90)  # 12:03
            log = "\n".join(fake.log_lines)
    finally:
        forget_entries(["app.tasks.report"])
    assert len(sent) == 2
    assert "the run due 2026-05-01T12:02:00+00:00 may not have run" in log


def test_with_a_lease_the_successor_sends_again_what_its_instance_claimed(schedule, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                         monkeypatch) -> None:
    schedule(tasks.stamped, every=timedelta(minutes=1), pass_due=True)
    lease = MemoryLease()
    real_send = sending.send_bytes
    kills = [1]

    def dying_send(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kills:
            kills.pop()
            raise SchedulerKilled  # after the lease claim, before the send
        return real_send(*args, **kwargs)

    with FakeUwsgi(mules=1, backlog_dir=tmp_path / "a") as a, FakeUwsgi(mules=1, backlog_dir=tmp_path / "b") as b:
        for fake in (a, b):
            fake.clock.set_datetime(START)
            duty_of(fake).scheduler.lease = lease
        monkeypatch.setattr(sending, "send_bytes", dying_send)
        with pytest.raises(SchedulerKilled):
            a.advance(30)  # 12:01: a claims it on the lease, then dies
        duty_of(a).scheduler.take_over()
        a.advance(1)  # a's successor sends 12:01 again: its token lets it through
        b.advance(31)  # b: 12:01 is a's
        sent = a.pending() + b.pending()
        outcome_b = StateFile(tmp_path / "b", print).read()["tests.periodic.tasks:stamped"].outcome
    assert sent == 1
    assert list(lease.claimed) == [("tests.periodic.tasks:stamped", datetime(2026, 5, 1, 12, 1, tzinfo=UTC).timestamp())]
    assert outcome_b == "run by another instance (lease)"
