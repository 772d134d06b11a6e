"""A mule told to stop (a reload, a stop) while it runs a task that then kills
it: what was queued behind the task is saved at once, and the user harakiri
armed around the task is cleared (uWSGI would keep it armed past the mule's
death, see docs/delivery.md "A mule that dies during a reload").

On the fake the stop signal's handler is called by the task itself, where on
real uWSGI the signal interrupts it (tests/chaos/test_chaos_regressions.py
runs the same on a real instance)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests import reload_death_tasks as tasks
from uwsgi_mules.backends.base import SimulatedCrash
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.mule.delivery.backlog import load
from uwsgi_mules.mule.delivery.ending import SERVING, EndingMarker, marker_path
from uwsgi_mules.mule.loop import MuleLoop

SERVE = "uwsgi_mules.mule:run"


def run_dying_task(fake: FakeUwsgi, queued: int) -> tuple[MuleLoop, list[int]]:
    """Mule 1 runs the dying task with ``queued`` calls behind it; returns the
    loop and the user harakiri seen while the task ran, after the stop request."""
    seen: list[int] = []
    with fake.as_mule(1):
        loop = MuleLoop(fake)
        loop.start()
        loop.stop_signals.on_request = loop._on_stop_request  # what start() wires on real uWSGI

        def told_to_stop() -> None:
            seen.append(fake.user_harakiri[fake.process])
            loop.stop_signals._on_signal(signal.SIGHUP, None)  # the signal, mid-task
            seen.append(fake.user_harakiri[fake.process])

        tasks.WHILE_RUNNING[:] = [told_to_stop]
        try:
            assert tasks.told_to_stop_then_dies()
            for n in range(queued):
                assert tasks.queued(n)
            with pytest.raises(SimulatedCrash):
                loop.step(1)
        finally:
            tasks.WHILE_RUNNING.clear()
    return loop, seen


def test_a_mule_told_to_stop_during_a_task_saves_its_queue_at_once_and_disarms_its_harakiri(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    with FakeUwsgi(mules=[SERVE], mule_harakiri=2, backlog_dir=backlog) as fake:
        _, seen = run_dying_task(fake, 10)
        files = list(backlog.glob("*.backlog"))
        saved = [entry for path in files for entry in load(path).entries]
    print(f"sent 11, saved {len(saved)} of the 10 queued behind the dying task, "
          f"harakiri before/after the stop request {seen}")
    assert seen == [2, 0], "armed around the task, cleared by the stop request"
    assert len(files) == 1 and len(saved) == 10
    assert {entry.path for entry in saved} == {"tests.reload_death_tasks:queued"}


def test_a_stop_request_between_tasks_saves_nothing_early(tmp_path: Path) -> None:
    """No task runs: :meth:`MuleLoop.stop` saves the queue as before, once."""
    backlog = tmp_path / "backlog"
    with FakeUwsgi(mules=[SERVE], mule_harakiri=2, backlog_dir=backlog) as fake, fake.as_mule(1):
        loop = MuleLoop(fake)
        loop.start()
        loop.stop_signals.on_request = loop._on_stop_request
        for n in range(3):
            assert tasks.queued(n)
        loop.stop_signals._on_signal(signal.SIGHUP, None)
        assert list(backlog.glob("*.backlog")) == []
        report = loop.stop()
    assert len(report.entries) == 3 and len(list(backlog.glob("*.backlog"))) == 1


@pytest.mark.parametrize(("previous", "current", "plugin", "said"), [
    (None, "7:1", False, None),                   # a first start
    ("7:1 serving", "7:1", False, None),          # a crash in the same generation: uWSGI kept the queue
    ("7:0 ended", "7:1", False, None),            # its stop path saved everything
    ("7:0 serving", "7:1", False, "ERROR mule 1 of the previous generation died"),
    ("7:0 saved-early", "7:1", False, "WARNING mule 1 of the previous generation saved its queue"),
    ("7:0 serving", "7:1", True, "the C plugin's master saved"),
    ("7:0 serving", "8:0", False, "ERROR mule 1 of the previous generation died"),  # a stop and a new start
])
def test_the_next_generation_says_what_uwsgi_dropped_when_a_mule_died_before_its_stop_path(
        tmp_path: Path, previous: str | None, current: str, plugin: bool, said: str | None) -> None:
    path = marker_path(tmp_path, 1)
    if previous is not None:
        path.write_text(previous + "\n")
    line = EndingMarker(path, current).what_was_dropped(1, plugin)
    print(f"{previous} -> {current}, plugin {plugin}: {line}")
    if said is None:
        assert line is None
    else:
        assert line is not None and said in line
    EndingMarker(path, current).mark(SERVING)
    assert EndingMarker(path, current).previous() == (current, SERVING)
