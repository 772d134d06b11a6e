"""Fake-only guarantees: errors instead of silent misroutes, the virtual
clock with cron -N and time windows, locks, spooler protocol, the drop-in."""

from __future__ import annotations

import sys
import textwrap
import threading
from datetime import datetime
from pathlib import Path

import pytest

from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.fake.clock import cron_matches
from uwsgi_mules.fake.locks import LockMisuse
from uwsgi_mules.locks import Lock, LockError
from uwsgi_mules.signals import (
    MULES,
    InvalidSchedule,
    InvalidSignal,
    Signal,
    SignalRegistrationError,
    SignalRoutingWarning,
    SignalTarget,
    UnknownSignalTarget,
    cron,
    rb_timer,
    signal_received,
    signal_wait,
    timer,
)
from uwsgi_mules.spooler import SpoolError, SpoolResult, SpoolTask, SpoolValueTooLarge, spool, spooler_handler


@pytest.fixture
def fake() -> FakeUwsgi:
    with FakeUwsgi(mules=2, farms={"x": [1, 2]}, workers=2, locks=2) as instance:
        yield instance


def test_bad_numbers_and_targets_raise_instead_of_wrapping(fake: FakeUwsgi) -> None:
    with pytest.raises(InvalidSignal, match="wrap it to 1"):
        Signal(257)
    with pytest.raises(InvalidSignal):
        Signal(-1)
    with fake.as_master():
        with pytest.raises(UnknownSignalTarget, match="unknown signal target 'mule-2'"):
            Signal(1).register(print, "mule-2")
        with pytest.raises(UnknownSignalTarget, match="mule 3 does not exist"):
            Signal(1).register(print, SignalTarget.mule(3))
        with pytest.raises(UnknownSignalTarget, match="farm 'y' does not exist"):
            Signal(1).register(print, "farm_y")
    # the raw fake keeps uWSGI's mod-256 wrap
    with fake.as_master():
        fake.register_signal(257, "worker", print)
    assert fake.signal_registered(1)


def test_registration_in_a_mule_raises_and_in_a_worker_warns(fake: FakeUwsgi) -> None:
    with fake.as_mule(1), pytest.raises(SignalRegistrationError, match="mule 1 cannot register"):
        Signal(5).register(print, MULES)
    with fake.as_mule(1), pytest.raises(ValueError, match="unable to register signal"):
        fake.register_signal(5, "mules", print)  # the raw API, like real uWSGI
    with fake.as_worker(2), pytest.warns(SignalRoutingWarning, match="worker 2 after fork"):
        Signal(6).register(print)
    with fake.as_master():
        Signal(7).register(print)
        with pytest.raises(SignalRegistrationError, match="already registered"):
            Signal(7).register(print)


def test_a_worker_registration_misroutes_like_real_uwsgi(fake: FakeUwsgi) -> None:
    ran: list[tuple[str, int]] = []
    with fake.as_worker(2), pytest.warns(SignalRoutingWarning):
        Signal(9).register(lambda n: ran.append(fake.process), SignalTarget.worker(2))
    Signal(9).send()  # the master's table has no entry: first available worker
    fake.deliver_signals()
    assert ran == [] and any("error managing signal 9 on worker 1" in line for line in fake.log_lines)


def test_signal_wait_and_received(fake: FakeUwsgi) -> None:
    with fake.as_master():
        timer(5, lambda n: None, SignalTarget.worker(1), signal=12)
    with fake.as_worker(1):
        assert signal_wait(12) == 12  # step mode: time jumps to the timer
        assert signal_received() == 12
    assert fake.clock.elapsed == 5


def test_timer_rb_timer_and_cron_fire_in_order_on_the_virtual_clock(fake: FakeUwsgi) -> None:
    fake.clock.set_datetime(datetime(2024, 1, 1, 10, 0, 30))  # a Monday
    fired: list[tuple[str, float]] = []
    with fake.as_master():
        timer(20, lambda n: fired.append(("timer", fake.clock.elapsed)), signal=1)
        rb_timer(25, lambda n: fired.append(("rb", fake.clock.elapsed)), iterations=2, signal=2)
        cron(lambda n: fired.append(("cron", fake.clock.elapsed)), minute=-1, signal=3)
    fake.advance(60)
    # cron fires at the first check of a matching minute, then no sooner than 60 s later (uWSGI's rule)
    assert fired == [
        ("cron", 0.0), ("timer", 20.0), ("rb", 25.0), ("timer", 40.0), ("rb", 50.0), ("timer", 60.0), ("cron", 60.0)
    ]


def test_cron_every_n_and_time_windows(fake: FakeUwsgi) -> None:
    fake.clock.set_datetime(datetime(2024, 1, 1, 0, 0, 0))
    fired: list[datetime] = []
    with fake.as_master():
        cron(lambda n: fired.append(fake.clock.now()), minute=-15, hour=-6, signal=4)  # */15 at hours 0,6,12,18
    fake.advance(24 * 3600 - 1)
    assert len(fired) == 16
    assert {(d.hour, d.minute) for d in fired} == {(h, m) for h in (0, 6, 12, 18) for m in (0, 15, 30, 45)}
    # crontab quirks kept: weekday 7 is Sunday; day and weekday both set are ORed
    assert cron_matches(datetime(2024, 1, 7, 3, 0), 0, 3, -1, -1, 7)
    assert cron_matches(datetime(2024, 1, 10, 3, 0), 0, 3, 10, -1, 0)  # the 10th, a Wednesday
    assert not cron_matches(datetime(2024, 1, 10, 3, 1), 0, 3, 10, -1, 0)


def test_cron_and_timer_validation(fake: FakeUwsgi) -> None:
    with fake.as_master():
        for bad in ({"minute": 60}, {"hour": -24}, {"day": 0}, {"month": 13}, {"weekday": 8}):
            with pytest.raises(InvalidSchedule):
                cron(print, signal=30, **bad)
        with pytest.raises(InvalidSchedule, match="whole number"):
            timer(1.5, print, signal=31)  # type: ignore[arg-type]
        with pytest.raises(InvalidSchedule, match=">= 1"):
            timer(0, print, signal=32)


def test_file_monitor_on_disk_and_on_demand(fake: FakeUwsgi, tmp_path: Path) -> None:
    watched = tmp_path / "dir"
    watched.mkdir()
    seen: list[int] = []
    from uwsgi_mules.signals import file_monitor

    with fake.as_master():
        file_monitor(watched, lambda n: seen.append(n), signal=40)
    assert fake.poll_file_monitors() == 0
    (watched / "new.txt").write_text("x")
    assert fake.poll_file_monitors() == 1
    fake.fire_file_monitor(watched)
    assert seen == [40, 40]


def test_locks_exclude_threads_and_relocking_raises(fake: FakeUwsgi) -> None:
    with fake.as_worker(1):
        with Lock(1):
            assert Lock(1).locked
            with pytest.raises(LockError, match="not re-entrant"):
                Lock(1).acquire()
            with pytest.raises(LockMisuse):
                fake.lock(1)  # the raw API raises too instead of deadlocking
        with pytest.raises(LockError, match="lock 3 does not exist"):
            Lock(3).acquire()
    counter = {"value": 0, "inside": 0, "overlap": 0}

    def work(worker: int) -> None:
        with fake.as_worker(worker):
            for _ in range(200):
                with Lock(2):
                    counter["inside"] += 1
                    counter["overlap"] = max(counter["overlap"], counter["inside"])
                    counter["value"] += 1
                    counter["inside"] -= 1

    threads = [threading.Thread(target=work, args=(w,)) for w in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert counter["value"] == 400 and counter["overlap"] == 1
    with fake.as_spooler(), pytest.raises(LockError, match="spooler"):
        Lock(0).acquire()


def test_spooler_protocol_at_and_priority() -> None:
    with FakeUwsgi(mules=0, spooler=True, spooler_ordered=True) as fake:
        results = iter([SpoolResult.RETRY, None])
        seen: list[str] = []

        @spooler_handler
        def handle(task: SpoolTask) -> SpoolResult | None:
            seen.append(task.text("id") or "")
            return next(results) if task.text("id") == "r" else SpoolResult.OK

        spool({"id": "r"})
        spool({"id": "later"}, at=fake.clock.time() + 30)
        spool({"id": "urgent"}, priority=1)
        assert fake.run_spooler() == 2
        assert seen == ["urgent", "r"]
        assert fake.run_spooler() == 1 and len(fake.spooler.tasks) == 1
        fake.advance(31)
        fake.run_spooler()
        assert seen == ["urgent", "r", "r", "later"] and fake.spooler.tasks == []
        with pytest.raises(SpoolValueTooLarge):
            spool({"blob": b"x" * 65_536})
        with pytest.raises(SpoolError, match="interpreted by uWSGI"):
            spool({"at": "1"})
    with FakeUwsgi(mules=0) as fake:
        with pytest.raises(SpoolError, match="spooler-ordered"):
            spool({"id": "p"}, priority=1)
        # raw uWSGI: 16-bit lengths cut a 70,000-byte value to 4,464 bytes
        fake.spool({b"big": b"x" * 70_000})
        assert len(fake.spooler.tasks[0].args[b"big"]) == 70_000 - 65_536


def test_dropin_imports_legacy_code_and_is_removed_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "legacy_app.py").write_text(textwrap.dedent("""
        import uwsgi
        from uwsgidecorators import timer, spool, mulefunc

        ticks = []

        @timer(10, target="mule1")
        def tick(num):
            ticks.append(uwsgi.mule_id())

        @spool
        def job(args):
            ticks.append(args["name"])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from uwsgi_mules.testing.dropin import install_dropin

    with install_dropin(mules=1) as dropin:
        legacy = dropin.load("legacy_app")
        dropin.fake.advance(25)
        legacy.job(name="n1")
        dropin.fake.run_spooler()
        assert legacy.ticks == [1, 1, "n1"]
        import uwsgi

        assert uwsgi.SPOOL_OK == -2 and getattr(uwsgi, "__uwsgi_mules_fake__") is dropin.fake
    assert "uwsgi" not in sys.modules and "uwsgidecorators" not in sys.modules
    assert "legacy_app" not in sys.modules


def test_uwsgi_dropin_fixture(uwsgi_dropin) -> None:  # type: ignore[no-untyped-def]
    import uwsgi

    with uwsgi_dropin.fake.as_master():
        uwsgi.register_signal(3, "worker", lambda n: None)
    assert uwsgi.signal_registered(3)
