"""Contract scenarios: each runs on the fake and on real uWSGI (binary, pyuwsgi)."""

from __future__ import annotations

from collections import Counter

from . import setups
from .harness import SignalHarness

SETUP = "tests.real.signal_apps.setups:"


def signal_for_mule2_runs_only_in_mule2(h: SignalHarness) -> None:
    h.start(SETUP + "routing", mules=3, farms={"x": [1, 2]})
    h.in_worker(setups.send, setups.MULE2_SIG)
    got = h.wait_records("mule2", 1)
    assert [r["mule"] for r in got] == [2]


def mules_target_runs_in_every_mule(h: SignalHarness) -> None:
    h.start(SETUP + "routing", mules=3, farms={"x": [1, 2]})
    h.in_worker(setups.send, setups.MULES_SIG)
    got = h.wait_records("mules", 3)
    assert sorted(r["mule"] for r in got) == [1, 2, 3]


def farm_target_runs_in_exactly_one_farm_mule(h: SignalHarness) -> None:
    h.start(SETUP + "routing", mules=3, farms={"x": [1, 2]})
    for _ in range(4):
        h.in_worker(setups.send, setups.FARM_SIG)
    got = h.wait_records("farm", 4)
    assert len(got) == 4  # one mule per signal, never a broadcast
    assert {r["mule"] for r in got} <= {1, 2}


def workers_target_runs_in_every_worker(h: SignalHarness) -> None:
    h.start(SETUP + "routing", mules=3, farms={"x": [1, 2]}, processes=2)
    h.in_worker(setups.send, setups.WORKERS_SIG)
    got = h.wait_records("workers", 2)
    assert sorted(r["worker"] for r in got) == [1, 2]
    assert all(r["mule"] == 0 for r in got)


def one_second_timer_fires_in_the_mule(h: SignalHarness) -> None:
    h.start(SETUP + "timers", mules=2)
    h.sleep(3.5)
    got = h.wait_records("timer", 3, settle=0)
    assert 2 <= len(got) <= 5
    assert {r["mule"] for r in got} == {1}
    gaps = [b["t"] - a["t"] for a, b in zip(got, got[1:])]
    assert all(0.5 <= gap <= 1.6 for gap in gaps), gaps


def rb_timer_with_three_iterations_fires_three_times(h: SignalHarness) -> None:
    h.start(SETUP + "timers", mules=2)
    h.sleep(3.5)
    got = h.wait_records("rb", 3, timeout=10)
    h.sleep(2.5)
    got = h.wait_records("rb", 4, timeout=0.5)
    assert len(got) == 3
    assert {r["mule"] for r in got} == {2}


def file_monitor_fires_on_a_change(h: SignalHarness) -> None:
    h.start(SETUP + "file_monitors", mules=1)
    h.sleep(1.0)
    assert h.records("filemon") == []
    h.in_worker(setups.touch_watched)
    got = h.wait_records("filemon", 1)
    assert len(got) >= 1 and {r["mule"] for r in got} == {1}


def cron_any_fires_and_every_n_is_accepted(h: SignalHarness) -> None:
    h.start(SETUP + "crons", mules=1)
    h.sleep(2.5)
    got = h.wait_records("cron_any", 1)
    assert len(got) == 1 and got[0]["mule"] == 1  # at most once per 60 s


def two_processes_with_lock_1_never_overlap(h: SignalHarness) -> None:
    h.start(SETUP + "nothing", processes=2, locks=1)
    results = h.in_workers([(setups.locked_increments, (1, 40)), (setups.locked_increments, (1, 40))])
    assert [r["overlaps"] for r in results] == [0, 0]
    assert h.in_worker(setups.read_counter) == 80
    if h.kind == "real":
        assert results[0]["pid"] != results[1]["pid"]


def spool_ok_deletes_and_retry_retries(h: SignalHarness) -> None:
    h.start(SETUP + "spooler", spooler=True)
    paths = h.in_worker(setups.spool_ok_and_retry)
    assert all(isinstance(p, str) and "uwsgi_spoolfile_on_" in p for p in paths)
    got = h.wait_records("spooled", 4, timeout=30)
    runs = Counter(r["id"] for r in got)
    assert runs == {"a": 1, "b": 3}
    assert [r["body"] for r in got if r["id"] == "a"] == [100_000]
    assert all(r["spooler"] for r in got)
    assert h.spool_pending() == 0


def spool_refuses_values_over_65535_bytes(h: SignalHarness) -> None:
    h.start(SETUP + "spooler", spooler=True)
    assert h.in_worker(setups.spool_too_large) == "SpoolValueTooLarge"


def every_decorator_works(h: SignalHarness) -> None:
    h.start(SETUP + "decorated", mules=2, farms={"x": [2]}, processes=2, spooler=True)
    # postfork ran in both workers, both mules and the spooler
    forked = h.wait_records("postfork", 5)
    assert sorted((r["worker"], r["mule"], r["spooler"]) for r in forked) == [
        (0, 0, True), (0, 1, False), (0, 2, False), (1, 0, False), (2, 0, False)]
    results = h.in_worker(setups.exercise_decorated)
    assert results == {
        "spool": True, "rpc": b"hello a,b", "lock": "l1", "mulefunc": [None, None, None],
        "harakiri": 42, "erlang": "ErlangNotSupported",
    }
    assert sorted(r["value"] for r in h.wait_records("d_spool", 2)) == ["v1", "v2"]
    assert [(r["a"], r["b"]) for r in h.wait_records("d_spool_args", 1)] == [(1, "two")]
    assert [r["value"] for r in h.wait_records("d_spoolraw", 1)] == ["r"]
    assert len(h.wait_records("d_spoolforever", 2, timeout=30)) >= 2  # runs again and again
    assert sorted(r["mule"] for r in h.wait_records("d_signal", 2)) == [1, 2]
    assert [r["tag"] for r in h.wait_records("d_thread", 1)] == ["t1"]
    assert [(r["tag"], r["locked"]) for r in h.records("d_lock")] == [("l1", True)]
    mulefuncs = {r["tag"]: r["mule"] for r in h.wait_records("d_mulefunc", 3)}
    assert mulefuncs["m1"] == 1 and mulefuncs["m2"] == 2 and mulefuncs["m3"] in (1, 2)
    assert len(h.wait_records("d_filemon", 1)) >= 1
    h.sleep(3.5)
    assert {r["mule"] for r in h.wait_records("d_timer", 2)} == {1}
    assert [r["mule"] for r in h.wait_records("d_rbtimer", 3, timeout=1)] == [2, 2]
    assert [r["mule"] for r in h.wait_records("d_cron", 1)] == [1]


ALL = [
    signal_for_mule2_runs_only_in_mule2,
    mules_target_runs_in_every_mule,
    farm_target_runs_in_exactly_one_farm_mule,
    workers_target_runs_in_every_worker,
    one_second_timer_fires_in_the_mule,
    rb_timer_with_three_iterations_fires_three_times,
    file_monitor_fires_on_a_change,
    cron_any_fires_and_every_n_is_accepted,
    two_processes_with_lock_1_never_overlap,
    spool_ok_deletes_and_retry_retries,
    spool_refuses_values_over_65535_bytes,
    every_decorator_works,
]
