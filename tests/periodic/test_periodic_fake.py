"""Periodic entries on the fake's virtual clock: ``fake.advance()`` fires them
with the same rules as a real mule's scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from uwsgi_mules import Mule
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.periodic import periodic
from uwsgi_mules.periodic.state import STATE_NAME

from . import tasks

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def ran(name: str) -> list[datetime | None]:
    return [due for task, due in tasks.RUNS if task == name]


def test_after_3_hours_the_hourly_cleanup_ran_3_times(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.cleanup, every=timedelta(hours=1))
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
        fake.advance(3 * 3600)
        assert fake.run_pending() == 3
    assert len(ran("cleanup")) == 3


def test_due_times_are_passed_and_exact(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(minutes=15), pass_due=True)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
        for _ in range(8):  # in small steps: each due time once, whatever the steps
            fake.advance(450)
            fake.run_pending()
    expected = [datetime(2026, 1, 1, 0, 15, tzinfo=UTC) + timedelta(minutes=15 * k) for k in range(4)]
    assert ran("stamped") == expected


def test_a_month_of_daily_cron_across_the_spring_dst_change(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.nightly, cron="30 2 * * *", tz="Europe/Paris", pass_due=True)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(datetime(2026, 3, 1, 0, 0, tzinfo=PARIS))
        for _ in range(31):
            fake.advance(86400)
            fake.run_pending()
    runs = ran("nightly")
    print(f"\nMarch 2026, daily 02:30 Europe/Paris: {len(runs)} runs, 29th at {runs[28]}")
    assert len(runs) == 31 and len(set(runs)) == 31
    # 02:30 does not exist on the 29th (02:00 -> 03:00): it runs once, when the clock jumps
    assert runs[28] == datetime(2026, 3, 29, 3, 0, tzinfo=PARIS)
    assert all(r.astimezone(PARIS).hour == 2 and r.astimezone(PARIS).minute == 30 for i, r in enumerate(runs) if i != 28)


def test_a_month_of_half_hourly_cron_across_the_autumn_dst_change(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.half_hourly, cron="*/30 * * * *", tz="Europe/Paris", pass_due=True)
    start = datetime(2026, 10, 1, 0, 0, tzinfo=PARIS)
    end = datetime(2026, 11, 1, 0, 0, tzinfo=PARIS)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(start - timedelta(seconds=1))
        for _ in range(31):
            fake.advance(86400)
            fake.run_pending()
        fake.advance(3600)  # October 2026 has 31 days and 1 hour in Paris
        fake.run_pending()
    runs = [r for r in ran("half_hourly") if r < end]
    instants = [r.timestamp() for r in runs]
    # every half hour of real time, the repeated hour of October 25 included (25 hours that day)
    expected = [start.timestamp() + 1800 * k for k in range(int((end.timestamp() - start.timestamp()) // 1800))]
    print(f"\nOctober 2026, */30 Europe/Paris: {len(runs)} runs (expected {len(expected)}), "
          f"doubled {len(instants) - len(set(instants))}")
    assert instants == expected
    assert len(expected) == 31 * 48 + 2


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("latest", 1), ("all", 10)])
def test_catch_up_after_a_stop(schedule, tmp_path: Path, policy: str, expected: int) -> None:  # type: ignore[no-untyped-def]
    """A fake with a backlog directory is a stopped and started instance."""
    schedule(tasks.stamped, every=timedelta(minutes=1), catch_up=policy, pass_due=True)
    start = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(start)
        fake.advance(120)
        fake.run_pending()
    assert len(ran("stamped")) == 2  # 12:01, 12:02
    assert (tmp_path / STATE_NAME).is_file()
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:  # 10 due times later
        fake.clock.set_datetime(start + timedelta(seconds=120 + 600))
        fake.advance(0)
        fake.run_pending()
        missed = ran("stamped")[2:]
        fake.advance(60)
        fake.run_pending()
    assert len(missed) == expected
    if expected:
        assert missed[-1] == datetime(2026, 5, 1, 12, 12, tzinfo=UTC)
        assert len(set(missed)) == expected
    assert ran("stamped")[-1] == datetime(2026, 5, 1, 12, 13, tzinfo=UTC)  # on time again


def test_catch_up_all_is_bounded(schedule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.cleanup, every=timedelta(seconds=1), catch_up="all")
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(datetime(2026, 5, 1, tzinfo=UTC))
        fake.advance(0)
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(datetime(2026, 5, 1, 1, tzinfo=UTC))  # 3600 due times
        fake.advance(0)
        assert fake.run_pending() == 100
        assert "3500 missed due time(s) not run" in "\n".join(fake.log_lines)


def test_jitter_holds_each_run_within_the_jitter(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(hours=1), jitter=600, pass_due=True)
    with FakeUwsgi(mules=1) as fake:
        fake.clock.set_datetime(datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
        fake.advance(1800)
        fake.run_pending()
        assert ran("stamped") == []  # queued, held until 01:00 + jitter
        fake.advance(600)
        fake.run_pending()
    assert ran("stamped") == [datetime(2026, 1, 1, 1, 0, tzinfo=UTC)]


def test_a_forged_state_file_is_refused_and_logged(schedule, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.cleanup, every=timedelta(minutes=1), catch_up="all")
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(datetime(2026, 5, 1, tzinfo=UTC))
        fake.advance(0)
    state = tmp_path / STATE_NAME
    state.write_bytes(state.read_bytes().replace(b'"due": 1', b'"due": 0'))  # an earlier due time: runs more
    with FakeUwsgi(mules=1, backlog_dir=tmp_path) as fake:
        fake.clock.set_datetime(datetime(2026, 5, 1, 0, 10, tzinfo=UTC))
        fake.advance(0)
        assert fake.run_pending() == 0  # starts from now: the forged due time is not trusted
        assert "periodic state" in "\n".join(fake.log_lines) and "refused" in "\n".join(fake.log_lines)


class _Naive(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"cron": "61 * * * *"}, "Bad minute"),
    ({"cron": "* * * *"}, "5 fields"),
    ({"cron": "0 0 31 2 *"}, "Bad day"),
    ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "not a known IANA timezone"),
    ({"cron": "* * * * *", "tz": _Naive()}, "naive"),
    ({"every": timedelta(milliseconds=500)}, "whole seconds"),
    ({"every": 60}, "timedelta"),
    ({}, "exactly one of"),
    ({"cron": "* * * * *", "every": timedelta(minutes=1)}, "exactly one of"),
    ({"every": timedelta(minutes=1), "catch_up": "never"}, "catch_up"),
    ({"every": timedelta(minutes=1), "jitter": -1}, "jitter"),
])
def test_bad_declarations_raise_value_error_with_the_reason(kwargs: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=reason):
        periodic(**kwargs)


def test_a_schedule_on_a_function_that_is_not_offloaded_raises() -> None:
    with pytest.raises(ValueError, match="needs an offloaded function"):
        periodic(every=timedelta(minutes=1))(tasks.not_offloaded)


def test_a_second_different_schedule_on_one_task_raises(schedule) -> None:  # type: ignore[no-untyped-def]
    offloaded = schedule(tasks.cleanup, every=timedelta(minutes=1))
    periodic(every=timedelta(minutes=1))(offloaded)  # the same again: fine
    with pytest.raises(ValueError, match="already has a schedule"):
        periodic(every=timedelta(minutes=2))(offloaded)


def test_works_on_farm_offload_mule_offload_and_mulefunc() -> None:
    from uwsgi_mules import Farm, mule_offload
    from uwsgi_mules.decorators import mulefunc
    from uwsgi_mules.periodic import forget_entries

    tasks.RUNS.clear()
    names = ["tests.periodic.tasks:cleanup", "tests.periodic.tasks:nightly", "tests.periodic.tasks:half_hourly"]
    try:
        with FakeUwsgi(mules=2, farms={"f": [1, 2]}) as fake:
            periodic(every=timedelta(minutes=1))(Farm("f").offload()(tasks.cleanup))
            periodic(every=timedelta(minutes=1), pass_due=True)(mule_offload(0)(tasks.nightly))
            periodic(every=timedelta(minutes=1), pass_due=True)(mulefunc(tasks.half_hourly))
            fake.clock.set_datetime(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
            fake.advance(60)
            assert fake.run_pending() == 3
        assert sorted(task for task, _ in tasks.RUNS) == ["cleanup", "half_hourly", "nightly"]
    finally:
        forget_entries(names)
        tasks.RUNS.clear()


def test_threaded_fake_fires_on_advance_and_its_mules_run_the_runs(schedule) -> None:  # type: ignore[no-untyped-def]
    schedule(tasks.stamped, every=timedelta(hours=1), pass_due=True)
    with FakeUwsgi(mules=1, threaded=True) as fake:
        fake.advance(3 * 3600)
        fake.join()
        runs = ran("stamped")
    assert len(runs) == 3 and len(set(runs)) == 3
    assert all(r is not None and r.minute == 0 and r.second == 0 for r in runs)
