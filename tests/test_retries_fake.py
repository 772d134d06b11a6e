"""Retries on exceptions, run-later and dead tasks on the fake, driven by its
virtual clock (step mode) or real seconds (threaded mode); counted by id."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests import retry_tasks as tasks
from uwsgi_mules import Mule, current_attempt, mule_offload, send_call_at
from uwsgi_mules.fake import FakeUwsgi

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.RUNS.clear()
    yield
    tasks.RUNS.clear()


def dead_lines(fake: FakeUwsgi) -> list[str]:
    return [line for line in fake.log_lines if "DEAD task" in line]


@pytest.mark.parametrize("mule", [SERVE, None], ids=["programmed", "signal-only"])
def test_fails_twice_then_succeeds_with_backoff_on_the_clock(mule: str | None) -> None:
    with FakeUwsgi(mules=[mule]) as fake:
        start = fake.wall_time()
        assert tasks.flaky(1, 2) is True
        assert fake.run_pending() == 1  # attempt 1 raises: retry 1 in 2 s
        assert fake.run_pending() == 0
        fake.advance(1.99)
        assert fake.run_pending() == 0, "nothing runs before its backoff"
        fake.advance(0.01)
        assert fake.run_pending() == 1  # attempt 2 raises: retry 2 in 4 s
        fake.advance(3.99)
        assert fake.run_pending() == 0
        fake.advance(0.01)
        assert fake.run_pending() == 1  # attempt 3 succeeds
        fake.advance(100)
        assert fake.run_pending() == 0
    runs = tasks.runs("flaky")
    print(f"\nflaky(1) failing twice: runs {[(a, at - start) for _, a, at in runs]}")
    assert [attempt for _, attempt, _ in runs] == [1, 2, 3]
    assert [round(at - start, 6) for _, _, at in runs] == [0, 2, 6]
    assert not fake.dead_letters and not dead_lines(fake)
    assert sum("retry 1 of 3 in 2.000s" in line for line in fake.log_lines) == 1


def test_failing_forever_ends_as_one_dead_task() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        tasks.always_times_out(7)
        for _ in range(10):
            fake.run_pending()
            fake.advance(10)
    attempts = Counter(task_id for task_id, _, _ in tasks.runs("always"))
    print(f"\nalways_times_out(7) with retries=2: {attempts[7]} runs, dead lines {len(dead_lines(fake))}")
    assert attempts == Counter({7: 3}), "1 run + 2 retries"
    assert len(dead_lines(fake)) == 1
    assert "DEAD task tests.retry_tasks:always_times_out(*(7,)" in dead_lines(fake)[0]
    [dead] = fake.dead_letters
    assert (dead.path, dead.attempts, dead.retries) == ("tests.retry_tasks:always_times_out", 3, 2)
    assert dead.error == "TimeoutError: 7 never answers"
    assert "raise TimeoutError" in dead.traceback
    assert dead.target == 1


def test_an_error_outside_retry_on_runs_once() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        tasks.wrong_error(3)
        for _ in range(5):
            fake.run_pending()
            fake.advance(100)
        assert len(fake.task_errors) == 1
    assert len(tasks.runs("wrong")) == 1
    assert not fake.dead_letters and not dead_lines(fake)


def test_a_crash_counts_as_an_attempt() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        tasks.crash_then_error(5)
        for _ in range(5):
            fake.run_pending()
            fake.advance(10)
    assert [attempt for _, attempt, _ in tasks.runs("crash_then_error")] == [1, 2, 3]
    assert not fake.dead_letters


def test_offload_in_never_runs_early_and_runs_once() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        start = fake.wall_time()
        assert tasks.later.offload_in(4, 1) is True
        tasks.later(2)  # other work goes on meanwhile
        assert fake.run_pending() == 1
        fake.advance(3.999)
        assert fake.run_pending() == 0
        fake.advance(0.001)
        assert fake.run_pending() == 1
        fake.advance(100)
        assert fake.run_pending() == 0
    assert [(task_id, round(at - start, 6)) for task_id, _, at in tasks.runs("later")] == [(2, 0), (1, 4)]


def test_offload_at_takes_an_aware_datetime() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        now = datetime.fromtimestamp(fake.wall_time(), timezone.utc)
        assert tasks.later.offload_at(now + timedelta(minutes=5), 1)
        assert tasks.later.offload_at(now - timedelta(minutes=5), 2)  # in the past: at once
        assert fake.run_pending() == 1
        fake.advance(299)
        assert fake.run_pending() == 0
        fake.advance(1)
        assert fake.run_pending() == 1
    assert [task_id for task_id, _, _ in tasks.runs("later")] == [2, 1]


def test_send_call_at_sends_a_built_call_with_its_metadata() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        due = fake.wall_time() + 30
        assert send_call_at(tasks.flaky.offloading.target, tasks.flaky.offloading.path, (9, 1), {}, due, {"retries": 3})
        fake.advance(29)
        assert fake.run_pending() == 0
        fake.advance(1)
        assert fake.run_pending() == 1  # attempt 1 fails: retried under its retries
        fake.advance(2)
        assert fake.run_pending() == 1
    assert [attempt for _, attempt, _ in tasks.runs("flaky")] == [1, 2]


def test_waiting_calls_survive_reload_and_stop_with_a_backlog_dir(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        for i in range(10):
            tasks.later.offload_in(60, i)
        assert fake.run_pending() == 0  # received: all wait
        fake.reload()
        fake.advance(30)
        assert fake.run_pending() == 0
        assert fake.shutdown() == 10
    assert not tasks.runs("later")
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        fake.clock.set_datetime(datetime.fromtimestamp(time.time() + 59))  # before the due time
        assert fake.run_pending() == 0
        fake.advance(5)
        assert fake.run_pending() == 10
    assert Counter(task_id for task_id, _, _ in tasks.runs("later")) == Counter(range(10))


def test_threaded_mode_honours_real_seconds() -> None:
    with FakeUwsgi(mules=[SERVE], threaded=True) as fake:
        start = time.time()
        tasks.later.offload_in(0.5, 1)
        tasks.flaky(2, 1)  # fails once; retried 2 s later
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(tasks.RUNS) < 3:
            time.sleep(0.05)
        fake.join()
    later_runs = tasks.runs("later")
    flaky_runs = tasks.runs("flaky")
    print(f"\nthreaded: later at +{later_runs[0][2] - start:.2f}s, flaky at "
          f"{[round(at - start, 2) for _, _, at in flaky_runs]}")
    assert len(later_runs) == 1 and later_runs[0][2] - start >= 0.5
    assert [a for _, a, _ in flaky_runs] == [1, 2]
    assert flaky_runs[1][2] - flaky_runs[0][2] >= 2.0


def test_current_attempt_is_1_outside_a_task() -> None:
    assert current_attempt() == 1


def _task() -> None: ...


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"retry_on": [ValueError]},
        {"retry_on": ValueError},
        {"retry_on": (ValueError, "TimeoutError")},
        {"retry_on": (int,)},
        {"retry_backoff": -1},
        {"retry_backoff": math.inf},
        {"retry_backoff_max": math.nan},
        {"retry_jitter": "yes"},
    ],
)
def test_bad_retry_options_are_refused_at_decoration(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        mule_offload(1, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Mule(1).offload(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [-1, math.inf, math.nan, "5", None, True])
def test_bad_delays_are_refused_at_call_time(seconds: object) -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        with pytest.raises(ValueError):
            tasks.later.offload_in(seconds, 1)
        assert fake.pending() == 0


def test_a_naive_datetime_is_refused() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        with pytest.raises(ValueError, match="timezone-aware"):
            tasks.later.offload_at(datetime.now() + timedelta(minutes=1), 1)
        with pytest.raises(ValueError):
            tasks.later.offload_at(time.time() + 60, 1)
        assert fake.pending() == 0


def test_threaded_mode_failing_forever_ends_as_one_dead_task() -> None:
    with FakeUwsgi(mules=[SERVE], threaded=True) as fake:
        tasks.always_times_out(8)  # backoff 1 s then 2 s, in real seconds
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not fake.dead_letters:
            time.sleep(0.05)
        time.sleep(0.5)
    runs = tasks.runs("always")
    assert [attempt for _, attempt, _ in runs] == [1, 2, 3]
    assert runs[1][2] - runs[0][2] >= 1.0 and runs[2][2] - runs[1][2] >= 2.0
    assert len(fake.dead_letters) == 1 and len(dead_lines(fake)) == 1


def test_threaded_mode_runs_due_calls_without_losing_the_messages_around_them() -> None:
    with FakeUwsgi(mules=[SERVE], threaded=True) as fake:
        for i in range(20):
            tasks.later.offload_in(0.2, i)
        time.sleep(0.4)  # due now; the mule is still waiting for its 1 s poll
        for i in range(50):
            tasks.flaky(100 + i, 0)  # calls with metadata: handed back by the receive loop one by one
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (len(tasks.runs("later")) < 20 or len(tasks.runs("flaky")) < 50):
            time.sleep(0.05)
        fake.join()
    later = Counter(task_id for task_id, _, _ in tasks.runs("later"))
    flaky = Counter(task_id for task_id, _, _ in tasks.runs("flaky"))
    print(f"\nthreaded: 20 due calls and 50 other calls: ran {sum(later.values())} and {sum(flaky.values())}")
    assert later == Counter(range(20))
    assert flaky == Counter(range(100, 150))
