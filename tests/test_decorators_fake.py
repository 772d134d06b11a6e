"""``uwsgi_mules.decorators`` on the fake: what differs from uwsgidecorators on purpose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from uwsgi_mules import QueueFull, configure
from uwsgi_mules.decorators import (
    ErlangNotSupported,
    erlang,
    get_free_signal,
    harakiri,
    lock,
    mulefunc,
    postfork,
    reset_decorators,
    signal,
    spool,
)
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime
from uwsgi_mules.signals import InvalidSignal, SignalRegistrationError
from uwsgi_mules.spooler import SpoolError, SpoolValueTooLarge

CALLS: list[object] = []


@pytest.fixture
def fake() -> Iterator[FakeUwsgi]:
    reset_runtime()
    reset_decorators()
    CALLS.clear()
    with FakeUwsgi(mules=1, workers=2) as instance:
        yield instance
    reset_decorators()
    reset_runtime()


def offloaded(value: int) -> None:
    CALLS.append(value)


def test_erlang_is_a_clear_error(fake: FakeUwsgi) -> None:
    with pytest.raises(ErlangNotSupported, match="not supported"):
        erlang("proc")


def test_postfork_for_one_worker_returns_the_decorated_object(fake: FakeUwsgi) -> None:
    with fake.as_master():
        only_two = postfork(2)(lambda: CALLS.append(fake.process))
    assert only_two is not None
    fake.simulate_fork()
    assert CALLS == [("worker", 2)]


def test_signal_decorator_validates(fake: FakeUwsgi) -> None:
    with fake.as_master():
        with pytest.raises(InvalidSignal):
            signal(300)
        signal(3)(lambda n: None)
        with pytest.raises(SignalRegistrationError):
            signal(3)(lambda n: None)
        assert get_free_signal() == 0
    with fake.as_mule(1), pytest.raises(SignalRegistrationError):
        signal(4, target="mules")(lambda n: None)


def test_spool_refuses_large_values_and_name_clashes(fake: FakeUwsgi) -> None:
    def job(args: dict[str, object]) -> None:
        CALLS.append(args)

    task = spool(job)
    with pytest.raises(SpoolValueTooLarge):
        task(data="x" * 70_000)

    def other() -> None: ...

    other.__name__ = "job"
    with pytest.raises(SpoolError, match="two spool functions"):
        spool(other)
    with FakeUwsgi(mules=0, spooler=False), pytest.raises(SpoolError, match="enable the uWSGI spooler"):
        spool(job)


def test_mulefunc_raises_on_a_full_queue_instead_of_dropping(fake: FakeUwsgi) -> None:
    configure(send_timeout=0.05)
    send = mulefunc(1)(offloaded)
    sent = 0
    with pytest.raises(QueueFull):
        for _ in range(10_000):
            assert send(1) is None
            sent += 1
    fake.run_pending()
    assert len(CALLS) == sent  # every accepted call ran; the refused one raised


def test_lock_and_harakiri(fake: FakeUwsgi) -> None:
    @lock
    def locked() -> bool:
        return fake.is_locked(0)

    @harakiri(5)
    def timed() -> dict[object, int]:
        return dict(fake.user_harakiri)

    assert locked() is True and fake.is_locked(0) is False
    assert timed() == {("worker", 1): 5} and fake.user_harakiri == {("worker", 1): 0}
    with fake.as_spooler():
        assert locked() is None  # skipped in the spooler, as uwsgidecorators does
