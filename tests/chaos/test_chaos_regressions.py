"""Pinned schedules: what the chaos suite found in issue 25 (points 1, 2, 3
and 5), each a fixed schedule run through the same driver and checker as
the random ones.

Each failed on the code before its fix with the violations the checker
reported; they pass now. A defect still open is a strict xfail until its
fix lands (a strict xfail that passes fails the run: the signal),
and the point leaves ``schedule.OPEN_DEFECTS`` so random schedules
include its trigger again.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import plugin_path

from .fake_driver import run_on_fake
from .faults import tmpfs_allowed
from .real_driver import run_on_real
from .runner import run_schedules

#: seconds the pinned real schedules wait for every call to be accounted for
PINNED_TAIL = 8.0
run_pinned_real = functools.partial(run_on_real, tail=PINNED_TAIL)
from .schedule import Call, Fault, Schedule, Send


def calls(prefix: str, count: int, kind: str, how: str = "call", delay: float = 0.0,
          fail_times: int = 0) -> tuple[Call, ...]:
    return tuple(Call(f"{prefix}{n:05d}x", kind, how, delay, fail_times) for n in range(count))


#: point 1: a batch of due calls (300 x 20 ms) starts, 20 plain offloads queue
#: behind it, then a touch-reload with mule-reload-mercy 3 s
DUE_BATCH_AND_RELOAD = Schedule(901, [
    Send(0.0, calls("s901c", 300, "slow", "in", 2.0)),
    Send(2.6, calls("s901p", 20, "plain")),
    Fault(3.0, "touch-reload"),
])
#: point 2: calls wait for their time, then the runtime filesystem (a 256 KiB tmpfs) is full
FULL_RUNTIME_FS = Schedule(902, [
    Send(0.0, calls("s902c", 30, "plain", "in", 4.0)),
    Fault(1.0, "disk-full"),
    Send(1.5, calls("s902d", 30, "plain", "in", 1.0) + calls("s902p", 10, "plain")),
    Fault(6.0, "disk-free"),
])
#: point 3: a task with retries=1500 that fails 1030 times
MANY_RETRIES = Schedule(903, [Send(0.0, calls("s903c", 1, "persistent", fail_times=1030))])
#: point 5: 60 tasks end dead, then (once they are) two `uwsgi-mules dead --resend-all` at once
RESEND_RACE = Schedule(905, [
    Send(0.0, calls("s905c", 60, "flaky", fail_times=5)),
    Fault(3.0, "resend-race"),
])

#: beyond issue 25's list ("reload-death"): a mule dies mid-task during a graceful reload
#: (binary without the plugin): the 10 plain offloads queued behind its task
DEATH_DURING_RELOAD = Schedule(906, [
    Send(0.0, calls("s906k", 1, "slow_crash") + calls("s906c", 10, "plain")),
    Fault(0.2, "sighup"),
])
#: the same while a worker still serves a request (the reload waits for it):
#: the dead mule's user harakiri (armed by uwsgi-mules around each task)
#: expires, and the master kills "mule pid 0", i.e. its own process group
DEATH_DURING_SLOW_RELOAD = Schedule(907, [
    Fault(0.0, "busy-worker"),
    Send(0.1, calls("s907k", 1, "slow_crash") + calls("s907c", 10, "plain")),
    Fault(0.3, "sighup"),
])


def run_pinned(request: pytest.FixtureRequest, schedule: Schedule, drive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_schedules(request, iter([schedule.seed]), lambda seed: schedule, drive, tmp_path)


def binary_only() -> None:
    """The pinned real schedules run once, on the uwsgi binary (the random ones run on every flavour)."""
    if require_real_uwsgi() != "uwsgi" or plugin_path():
        pytest.skip("pinned regression schedules run once, on the uwsgi binary without the plugin (env uwsgi); "
                    "random schedules cover pyuwsgi and the plugin")


def test_finds_retries_above_1024_killing_the_task(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run_pinned(request, MANY_RETRIES, run_on_fake, tmp_path)


@pytest.mark.real
@pytest.mark.plugin
def test_finds_due_batch_ignoring_reload(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    binary_only()
    run_pinned(request, DUE_BATCH_AND_RELOAD, run_pinned_real, tmp_path)


@pytest.mark.real
@pytest.mark.plugin
def test_finds_full_runtime_filesystem_losing_calls(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    binary_only()
    why_not = tmpfs_allowed()
    if why_not:
        pytest.skip(why_not)
    run_pinned(request, FULL_RUNTIME_FS, run_pinned_real, tmp_path)


@pytest.mark.real
@pytest.mark.plugin
def test_finds_concurrent_dead_resend_duplicating(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    binary_only()
    run_pinned(request, RESEND_RACE, run_pinned_real, tmp_path)


@pytest.mark.real
@pytest.mark.plugin
def test_finds_mule_death_during_reload_losing_its_queue(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    binary_only()
    run_pinned(request, DEATH_DURING_RELOAD, run_pinned_real, tmp_path)


@pytest.mark.real
@pytest.mark.plugin
def test_finds_mule_death_during_slow_reload_killing_the_instance(tmp_path: Path,
                                                                  request: pytest.FixtureRequest) -> None:
    binary_only()
    run_pinned(request, DEATH_DURING_SLOW_RELOAD, run_pinned_real, tmp_path)
