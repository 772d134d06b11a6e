"""The scheduler's promises, on the fake backend with a state file: a
scheduler killed while sending a run leads to exactly one run of it, a failed
send is not recorded and is tried again, a lease decides between
instances, and ``uwsgi-mules schedule`` lists the state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from uwsgi_mules.cli import main
from uwsgi_mules.errors import QueueFull
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.periodic import sending
from uwsgi_mules.periodic.duty import duty_of
from uwsgi_mules.periodic.state import StateFile

from . import tasks

UTC = timezone.utc
START = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
NAME = "tests.periodic.tasks:stamped"


def stamps() -> list[datetime | None]:
    return [due for task, due in tasks.RUNS if task == "stamped"]


class SchedulerKilled(BaseException):
    """The scheduling process dying (escapes the scheduler's error handling, as SIGKILL would)."""


@pytest.mark.parametrize("when", ["before the send", "after the send"])
def test_a_scheduler_killed_while_sending_leads_to_exactly_one_run(schedule, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                                    when: str) -> None:
    """The scheduler dies between recording "12:02, sending" and recording
    "12:02, sent", before or after the send went out: its successor sends
    12:02 again, and the mule runs it once (the second copy is skipped)."""
    schedule(tasks.stamped, every=timedelta(minutes=1), catch_up="all", pass_due=True)
    real_send = sending.send_bytes
    kills = [when]

    def dying_send(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not kills:
            return real_send(*args, **kwargs)
        if kills.pop() == "after the send":
            real_send(*args, **kwargs)
        raise SchedulerKilled

    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(START)
        fake.advance(60)  # 12:01 sent
        fake.run_pending()
        monkeypatch.setattr(sending, "send_bytes", dying_send)
        with pytest.raises(SchedulerKilled):
            fake.advance(60)  # 12:02: "sending" is recorded, then the scheduler dies
        assert StateFile(tmp_path, print).read()[NAME].sending is True
        duty_of(fake).scheduler.take_over()  # its successor reads the state
        fake.advance(30)  # 12:02:30
        fake.run_pending()
        fake.advance(60)  # 12:03
        fake.run_pending()
        log = "\n".join(fake.log_lines)
    minute = [datetime(2026, 5, 1, 12, m, tzinfo=UTC) for m in (1, 2, 3)]
    print(f"\nscheduler killed {when}: runs {stamps()}")
    assert stamps() == minute
    assert "may not have run" not in log
    assert StateFile(tmp_path, print).read()[NAME].sending is False
    if when == "after the send":
        assert f"uwsgi-mules: periodic {NAME}: the run due 2026-05-01T12:02:00+00:00 already ran" in log


def test_a_failed_send_is_logged_not_recorded_and_tried_again(schedule, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(minutes=1), pass_due=True)
    real_send = sending.send_bytes
    failures = [QueueFull("mule 1 is full")]

    def flaky_send(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real_send(*args, **kwargs)

    monkeypatch.setattr(sending, "send_bytes", flaky_send)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(START)
        fake.advance(30)  # 12:01 due: the send fails
        assert fake.run_pending() == 0
        assert "was not sent (QueueFull('mule 1 is full')); trying again in 1 s" in "\n".join(fake.log_lines)
        fake.advance(1)
        fake.run_pending()
        fake.advance(60)
        fake.run_pending()
    assert stamps() == [datetime(2026, 5, 1, 12, 1, tzinfo=UTC), datetime(2026, 5, 1, 12, 2, tzinfo=UTC)]


class MemoryLease:
    """A lease shared by the schedulers of two fakes, as Redis would be."""

    def __init__(self) -> None:
        self.claimed: dict[tuple[str, float], str | None] = {}
        self.down = False

    def claim(self, entry: str, due: float, token: str | None = None) -> bool:
        if self.down:
            raise ConnectionError("the lease store is down")
        if (entry, due) in self.claimed:
            return token is not None and self.claimed[(entry, due)] == token
        self.claimed[(entry, due)] = token
        return True

    def describe(self) -> str:
        return "memory"


def test_with_a_lease_two_instances_send_each_due_time_once(schedule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(minutes=1), pass_due=True)
    lease = MemoryLease()
    with FakeUwsgi(mules=1, backlog_dir=tmp_path / "a") as a, FakeUwsgi(mules=1, backlog_dir=tmp_path / "b") as b:
        for fake in (a, b):
            fake.clock.set_datetime(START)
            duty_of(fake).scheduler.lease = lease
        for _ in range(5):
            a.advance(60)
            b.advance(60)
        lease.down = True
        a.advance(60)  # 12:06: the store is down: not sent, tried again
        lease.down = False
        a.advance(1)
        b.advance(61)
        sent = a.pending() + b.pending()
        outcome_b = StateFile(tmp_path / "b", print).read()[NAME].outcome
        log = "\n".join(a.log_lines)
    assert sent == 6 and len(lease.claimed) == 6
    assert outcome_b == "run by another instance (lease)"
    assert "ConnectionError('the lease store is down')" in log


def test_schedule_command_lists_the_entries(schedule, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(minutes=1), pass_due=True)
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(START)
        fake.advance(60)
    assert main(["schedule", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}: 1 entry" in out
    assert NAME in out and "every:60" in out and "last due 2026-05-01T12:01:00+00:00" in out and "sent" in out
    assert main(["schedule", "--dir", str(tmp_path / "nothing")]) == 2
    assert "no periodic state" in capsys.readouterr().err


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_a_stuck_scheduler_catches_up_by_policy(schedule, policy: str) -> None:  # type: ignore[no-untyped-def]
    """While holding the lock, due times more than 60 s old when it looks follow catch_up."""
    schedule(tasks.stamped, every=timedelta(seconds=30), catch_up=policy, pass_due=True)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(START)
        scheduler = duty_of(fake).scheduler
        scheduler.tick(fake.clock.time())
        fake.clock.elapsed += 300  # stuck for 5 minutes: 10 due times, the last 2 within 60 s
        scheduler.tick(fake.clock.time())
        fake.run_pending()
    expected = {"skip": 2, "latest": 3, "all": 10}[policy]
    assert len(stamps()) == expected


def test_an_unusable_state_directory_is_logged_once_and_tried_less_often(schedule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(minutes=1), pass_due=True)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with FakeUwsgi(mules=1, backlog_dir=not_a_directory) as fake:
        fake.clock.set_datetime(START)
        fake.advance(600)
        failures = [line for line in fake.log_lines if "periodic scheduler failed" in line]
        assert fake.pending() == 0
    assert len(failures) == 1 and "NotADirectoryError" in failures[0]
