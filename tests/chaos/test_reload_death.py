"""A mule that dies mid-task during a full reload ("reload-death", found by
the chaos suite beyond issue 25's list), on every real flavour.

The pinned schedules 906 and 907 of test_chaos_regressions.py run on the uwsgi
binary without the plugin; here they run (as 916 and 917, the reload a little
later, so that the task has surely started) on the binary with the C plugin
and on pyuwsgi. Schedule 908 kills the mule before its stop handler can run (the
task blocks the stop signals): only the plugin's master hook then keeps uWSGI
from SIGKILLing "mule pid 0", its own process group (docs/delivery.md, "A
mule that dies during a reload")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import plugin_path

from .real_driver import run_on_real
from .runner import run_schedules
from .schedule import Fault, Schedule, Send
from .test_chaos_regressions import DEATH_DURING_RELOAD, DEATH_DURING_SLOW_RELOAD, PINNED_TAIL, calls

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

#: seconds after the send when the reload starts: the task (1 s of work) has started by then, even on a
#: busy machine, and not ended (the pinned schedules send SIGHUP 0.2 s after: the task may not have started)
SIGHUP_AT = 0.7


def later_sighup(schedule: Schedule, seed: int) -> Schedule:
    """``schedule`` with its SIGHUP :data:`SIGHUP_AT` seconds after its send."""
    send = next(step for step in schedule.steps if isinstance(step, Send))
    steps = [Fault(send.at + SIGHUP_AT, "sighup") if isinstance(step, Fault) and step.kind == "sighup" else step
             for step in schedule.steps]
    return Schedule(seed, steps)


#: the mule dies with its stop signals blocked, during a reload a busy worker makes last 6 s
DEATH_BEFORE_THE_STOP_HANDLER = Schedule(908, [
    Fault(0.0, "busy-worker"),
    Send(0.1, calls("s908k", 1, "deaf_crash") + calls("s908c", 10, "plain")),
    Fault(0.1 + SIGHUP_AT, "sighup"),
])
#: the log line of the plugin's master hook
DISARMED = "is gone with a harakiri still armed"


def run(request: pytest.FixtureRequest, schedule: Schedule, tmp_path: Path) -> str:
    """Run ``schedule`` (failing on any invariant broken); returns the instance logs."""
    run_schedules(request, iter([schedule.seed]), lambda seed: schedule,
                  lambda s, d: run_on_real(s, d, tail=PINNED_TAIL), tmp_path)
    return "".join(path.read_text(errors="replace") for path in sorted(tmp_path.glob("seed*/uwsgi-*.log")))


@pytest.mark.parametrize("schedule", [later_sighup(DEATH_DURING_RELOAD, 916), later_sighup(DEATH_DURING_SLOW_RELOAD, 917)],
                         ids=["reload", "slow-reload"])
def test_a_mule_dying_during_a_reload_loses_nothing(schedule: Schedule, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    if require_real_uwsgi() == "uwsgi" and not plugin_path():
        pytest.skip("the uwsgi binary without the plugin runs these as test_chaos_regressions.py's pinned schedules")
    log = run(request, schedule, tmp_path)
    assert "told to stop during a task: saved 10 queued offload(s)" in log
    assert "WARNING mule 1 of the previous generation saved its queue when told to stop during a task" in log


def test_a_mule_dying_before_its_stop_handler_is_disarmed_by_the_plugin(tmp_path: Path,
                                                                        request: pytest.FixtureRequest) -> None:
    if not plugin_path():
        pytest.skip("without the C plugin uWSGI SIGKILLs its own process group here (a dead mule's harakiri "
                    "expires on pid 0): docs/delivery.md says so and how to avoid it")
    log = run(request, DEATH_BEFORE_THE_STOP_HANDLER, tmp_path)
    assert DISARMED in log and "HARAKIRI ON MULE" not in log
    assert "ERROR mule 1 of the previous generation died during the reload" in log
    assert "the C plugin's master saved" in log
