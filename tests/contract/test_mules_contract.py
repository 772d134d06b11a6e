"""Contract scenarios of the foundation: each runs on fake-step, fake-threaded and real uWSGI."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from uwsgi_mules import MessageTooLarge, UnknownFarm, UnknownMule
from uwsgi_mules.mule import script_path
from uwsgi_mules.mule.delivery.dead import list_dead, request_resend

from tests.support.server import plugin_path

from . import tasks
from .harness import Harness

SERVE = "uwsgi_mules.mule:run"
RECORDER = "tests.contract.tasks:recorder"
SLEEPER = "tests.contract.tasks:sleeper"
SERVE_SCRIPT = script_path()  # the entry point's script form, for lazy-apps


def test_send_to_a_mule_and_to_the_shared_queue(harness: Harness) -> None:
    harness.start([RECORDER, RECORDER])
    assert harness.in_worker(tasks.send_to_mule, 2, "for mule two") is True
    got = harness.wait_records("received", 1)
    assert [(r["mule"], r["value"]) for r in got] == [(2, "for mule two")]
    assert harness.in_worker(tasks.send_to_mule, 0, "for anyone") is True
    got = harness.wait_records("received", 2)
    assert len(got) == 2 and got[1]["value"] == "for anyone" and got[1]["mule"] in (1, 2)


def test_get_farms_lists_both_farms(harness: Harness) -> None:
    harness.start([SERVE, SERVE, None], {"reports": [1, 2], "mail": [3]})
    assert harness.in_worker(tasks.farms) == [("reports", [1, 2]), ("mail", [3])]


def test_get_farms_from_the_command_line_without_topology_env(harness: Harness) -> None:
    harness.start([SERVE, SERVE, None], {"reports": [1, 2], "mail": [3]}, topology_env=False)
    assert harness.in_worker(tasks.farms) == [("reports", [1, 2]), ("mail", [3])]


def test_queue_full_raw_false_then_typed_queue_full_losing_nothing(harness: Harness) -> None:
    harness.start([SLEEPER, SLEEPER])
    # raw layer: a non-reading mule's queue takes 278 messages of 100 bytes, then False
    assert harness.in_worker(tasks.raw_fill, 1, 100) == 278
    # typed layer: retries for its timeout, then raises QueueFull; nothing it accepted is lost
    outcome = harness.in_worker(tasks.typed_fill, 2, 1000, 0.5)
    assert outcome["error"] == "QueueFull"
    assert outcome["accepted"] == 93
    if harness.concurrent:
        assert 0.4 <= outcome["seconds"] < 5
    else:  # step mode: nothing can drain before run_pending(), so it fails at once
        assert outcome["seconds"] < 0.4 and "step mode" in outcome["message"]


def test_queue_depth_where_the_backend_can_see_it(harness: Harness) -> None:
    harness.start([SLEEPER])
    assert harness.in_worker(tasks.raw_fill, 1, 100) == 278
    depth = harness.in_worker(tasks.queue_depth, 1)
    if harness.kind == "real" and plugin_path() is None:
        assert depth is None  # pure Python cannot see a uWSGI queue
    else:
        assert depth == 278
    if harness.kind == "real" and plugin_path() is not None:
        assert harness.in_worker(tasks.layout_source) == "mules_plugin"


def test_message_larger_than_the_receive_buffer(harness: Harness) -> None:
    harness.start([RECORDER])
    # raw uWSGI accepts 65,537..212,960 bytes and delivers them truncated to 65,536
    assert harness.in_worker(tasks.raw_send, b"z" * 70_000, 1) is True
    got = harness.wait_records("received", 1)
    assert len(got[0]["value"]) == 65_536
    # 212,961 bytes no longer fit the socket at all
    assert harness.in_worker(tasks.raw_send, b"z" * 212_961, 1) is False
    # the typed layer refuses before sending
    with pytest.raises(MessageTooLarge):
        harness.in_worker(tasks.send_to_mule, 1, "z" * 70_000)


def test_unknown_mule_and_farm(harness: Harness) -> None:
    harness.start([SERVE, SERVE], {"reports": [1, 2]})
    with pytest.raises(UnknownMule):
        harness.in_worker(tasks.send_to_mule, 3, "nobody")
    with pytest.raises(UnknownFarm):
        harness.in_worker(tasks.send_to_farm, "nope", "nobody")
    # raw: an unknown farm is a ValueError, an out-of-range mule a silent False
    with pytest.raises(ValueError, match="unknown farm"):
        harness.in_worker(tasks.raw_send, b"x", b"nope")
    assert harness.in_worker(tasks.raw_send, b"x", 3) is False


def test_str_and_bytes_farm_names(harness: Harness) -> None:
    harness.start([RECORDER, RECORDER], {"reports": [1, 2]})
    # raw uWSGI on Python 3: a str farm name is refused, bytes work
    with pytest.raises(ValueError, match="invalid mule"):
        harness.in_worker(tasks.raw_send, b"raw-str", "reports")
    assert harness.in_worker(tasks.raw_send, b"raw-bytes", b"reports") is True
    # typed layer: a str farm name just works
    assert harness.in_worker(tasks.send_to_farm, "reports", "typed-str") is True
    got = harness.wait_records("received", 2)
    assert sorted(r["value"] for r in got) == ["raw-bytes", "typed-str"]
    assert all(r["mule"] in (1, 2) for r in got)


def test_get_message_timeout_returns_empty(harness: Harness) -> None:
    harness.start([SERVE, SERVE])
    message, seconds = harness.in_mule(2, tasks.get_message_with_timeout, 1)
    assert message == ""
    assert 0.9 <= seconds < 5


def test_offload_runs_exactly_once_per_call(harness: Harness) -> None:
    harness.start([SERVE, SERVE, None], {"reports": [1, 2], "mail": [3]})
    assert harness.in_worker(tasks.offload, "on_mule1", "m1", 5) == 5
    assert harness.in_worker(tasks.offload, "on_mule2", "m2", 5) == 5
    assert harness.in_worker(tasks.offload, "on_reports_farm", "farm", 6) == 6
    assert harness.in_worker(tasks.offload, "on_mail_farm", "mail", 4) == 4
    assert harness.in_worker(tasks.offload, "on_any_mule", "any", 6) == 6
    m1 = harness.wait_records("m1", 5)
    m2 = harness.wait_records("m2", 5)
    farm = harness.wait_records("farm", 6)
    mail = harness.wait_records("mail", 4)
    anyone = harness.wait_records("any", 6)
    assert sorted(r["value"] for r in m1) == list(range(5)) and {r["mule"] for r in m1} == {1}
    assert sorted(r["value"] for r in m2) == list(range(5)) and {r["mule"] for r in m2} == {2}
    assert sorted(r["value"] for r in farm) == list(range(6)) and {r["mule"] for r in farm} <= {1, 2}
    # mule 3 is signal-only: the hook installed at import runs the offload
    assert sorted(r["value"] for r in mail) == list(range(4)) and {r["mule"] for r in mail} == {3}
    assert sorted(r["value"] for r in anyone) == list(range(6)) and {r["mule"] for r in anyone} <= {1, 2, 3}


def test_failing_task_is_logged_and_the_mule_keeps_serving(harness: Harness) -> None:
    harness.start([SERVE])
    harness.in_worker(tasks.failing_task, "fail")
    harness.in_worker(tasks.offload, "on_mule1", "after", 1)
    assert len(harness.wait_records("fail", 1)) == 1
    assert len(harness.wait_records("after", 1)) == 1
    if harness.kind == "real":
        harness.server.wait_for_log("task failed on purpose")
    else:
        assert any("task failed on purpose" in str(exc) for _, exc in harness.fake.task_errors)


def test_offload_with_lazy_apps(harness: Harness) -> None:
    harness.start([SERVE_SCRIPT, None], lazy_apps=True)
    harness.in_worker(tasks.offload, "on_mule1", "lazy1", 3)
    harness.in_worker(tasks.offload, "on_mule2", "lazy2", 3)
    assert sorted(r["value"] for r in harness.wait_records("lazy1", 3)) == [0, 1, 2]
    assert sorted(r["value"] for r in harness.wait_records("lazy2", 3)) == [0, 1, 2]


def test_burst_of_10000_offloads_from_two_workers_into_one_mule(harness: Harness) -> None:
    if not harness.concurrent:
        pytest.skip("a burst needs a mule draining concurrently; step mode has none by design")
    harness.start([SERVE], processes=2)
    sent = harness.in_workers(
        [(tasks.offload, ("on_mule1", "burst", 5000, 0)), (tasks.offload, ("on_mule1", "burst", 5000, 5000))]
    )
    assert sent == [5000, 5000]
    got = harness.wait_records("burst", 10_000, timeout=120, settle=0.5)
    assert len(got) == 10_000
    assert sorted(r["value"] for r in got) == list(range(10_000))


# -- waiting calls, dead tasks, re-sent dead tasks (the mule loop of each backend) ---------------


def wait_with_wakeups(harness: Harness, name: str, count: int, timeout: float = 30.0) -> list[dict]:
    """Wait for ``count`` records of ``name``, sending a ping to mule 1 now
    and then: a signal-only mule tends its due calls and duties when a
    message wakes it (uWSGI's own loop runs it)."""
    deadline = time.monotonic() + timeout
    while len(harness.records(name)) < count and time.monotonic() < deadline:
        harness.in_worker(tasks.on_mule1, "ping", 0)
        harness.let_time_pass(0.25)
    harness.settle(0.5)
    return harness.records(name)


@pytest.mark.parametrize("mule", [SERVE, None], ids=["programmed", "signal-only"])
def test_waiting_calls_run_once_and_never_early(harness: Harness, mule: str | None) -> None:
    harness.start([mule])
    total, delay = 10, 1.0
    sent_at = harness.in_worker(tasks.send_later, total, delay)
    harness.let_time_pass(0.3)
    assert harness.records("later") == [], "nothing runs before its time"
    got = wait_with_wakeups(harness, "later", total)
    ids = Counter(r["value"]["id"] for r in got)
    lost = sorted(set(range(total)) - set(ids))
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    early = sorted(r["value"]["id"] for r in got if r["value"]["at"] < sent_at + delay)
    print(f"\n{harness.kind} {mule or 'signal-only'}: offload_in({delay:g}) x{total}: sent {total}, executed "
          f"{len(got)}, lost {len(lost)}, duplicated {len(duplicated)}, early {len(early)}")
    assert (lost, duplicated, early) == ([], [], [])


@pytest.mark.parametrize("mule", [SERVE, None], ids=["programmed", "signal-only"])
def test_a_dead_task_is_recorded_then_resent_and_picked_up(harness: Harness, mule: str | None) -> None:
    backlog = harness.workdir / "backlog"
    harness.start([mule], env={"UWSGIMULES_BACKLOG_DIR": str(backlog)})
    assert harness.in_worker(tasks.send_until_fixed, 7) is True
    wait_with_wakeups(harness, "until_fixed", 2)  # 1 run + 1 retry, then dead
    deadline = time.monotonic() + 30
    while not list_dead(backlog) and time.monotonic() < deadline:
        harness.let_time_pass(0.2)
    dead = list_dead(backlog)
    assert [task.path for task in dead] == ["tests.contract.tasks:until_fixed"], dead
    assert "TimeoutError: 7: the service is down" in dead[0].error
    (harness.workdir / "fixed").write_text("the service is back")
    assert len(request_resend(backlog, None)) == 1
    runs = wait_with_wakeups(harness, "until_fixed", 3)
    harness.settle(1.0)
    runs = harness.records("until_fixed")
    print(f"\n{harness.kind} {mule or 'signal-only'}: a task that times out (retries=1): "
          f"{len(runs)} runs, then re-sent once: dead after it {len(list_dead(backlog))}")
    assert [r["value"]["id"] for r in runs] == [7, 7, 7], "1 run + 1 retry, then the re-sent run, once"
    assert list_dead(backlog) == []
