"""The typed layer on the fake backend."""

from __future__ import annotations

import inspect
import pickle
import threading
import time

import pytest

from uwsgi_mules import (
    BackendUnavailable,
    Farm,
    MessageTooLarge,
    Mule,
    NotInMule,
    NotOffloadable,
    QueueFull,
    UnknownFarm,
    UnknownMule,
    configure,
    mule_offload,
)
from uwsgi_mules import envelope
from uwsgi_mules.backends.selection import current_backend
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.registry import TaskRegistry, UnregisteredTask, function_path

from . import sample_tasks


@pytest.fixture
def uwsgi_fake_options() -> dict[str, object]:
    return {"mules": ["uwsgi_mules.mule:run", "uwsgi_mules.mule:run", None], "farms": {"busy": [1, 2]}}


def test_without_backend_sending_explains_how_to_activate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "uwsgi", None)
    with pytest.raises(BackendUnavailable, match="FakeUwsgi"):
        sample_tasks.add_to_log("x")


def test_decorated_function_keeps_name_doc_and_signature() -> None:
    assert sample_tasks.add_to_log.__name__ == "add_to_log"
    assert sample_tasks.add_to_log.__doc__ == "Append to LOG (runs in a mule)."
    assert inspect.signature(sample_tasks.add_to_log) == inspect.signature(sample_tasks.add_to_log.run_local)
    assert list(inspect.signature(sample_tasks.add_to_log).parameters) == ["item", "times"]
    assert sample_tasks.add_to_log.offloading.path == "tests.sample_tasks:add_to_log"


def test_offload_round_trip_runs_once_in_the_right_mule(uwsgi_fake: FakeUwsgi) -> None:
    sample_tasks.LOG.clear()
    assert sample_tasks.add_to_log("a", times=2) is True
    assert sample_tasks.on_farm("b") is True
    assert sample_tasks.same_name_other_module("c") is True
    assert uwsgi_fake.run_pending() == 3
    assert sorted(sample_tasks.LOG) == [("a", 1), ("a", 1), ("b", 1), ("other send", 2)]
    assert uwsgi_fake.run_pending() == 0


def test_functions_with_one_name_in_two_modules_do_not_collide(uwsgi_fake: FakeUwsgi) -> None:
    from . import sample_tasks_other

    sample_tasks.LOG.clear()
    sample_tasks.send("mine")
    sample_tasks_other.send("theirs")
    uwsgi_fake.run_pending()
    assert sorted(sample_tasks.LOG) == [("sample_tasks.send", "mine"), ("sample_tasks_other.send", "theirs")]


def test_arguments_really_go_through_pickle(uwsgi_fake: FakeUwsgi) -> None:
    data = {"nested": [1, 2]}
    sample_tasks.mutate(data)
    uwsgi_fake.run_pending()
    assert data == {"nested": [1, 2]}  # the mule got a copy
    assert sample_tasks.LOG[-1] == ("mutated", {"nested": [1, 2, 3]})


def test_not_offloadable() -> None:
    with pytest.raises(NotOffloadable, match="lambda"):
        mule_offload(1)(lambda: None)

    def nested() -> None: ...

    with pytest.raises(NotOffloadable, match="nested"):
        Mule(1).offload()(nested)


def test_unpicklable_argument_fails_in_the_caller(uwsgi_fake: FakeUwsgi) -> None:
    with pytest.raises(NotOffloadable, match="pickled"):
        sample_tasks.add_to_log(threading.Lock())
    assert uwsgi_fake.pending() == 0


def test_unknown_targets(uwsgi_fake: FakeUwsgi) -> None:
    with pytest.raises(UnknownMule, match="mule 4 does not exist"):
        Mule(4).send("x")
    with pytest.raises(UnknownMule):
        Mule(-1)
    with pytest.raises(UnknownFarm, match="'nope' does not exist"):
        mule_offload("nope")(sample_tasks.plain)("x")
    assert isinstance(UnknownFarm("x"), ValueError) and isinstance(NotInMule("x"), ValueError)


def test_message_too_large(uwsgi_fake: FakeUwsgi) -> None:
    with pytest.raises(MessageTooLarge):
        Mule(1).send(b"x" * 65_537)
    assert Mule(1).send(b"x" * 65_536) is True


def test_msg_buffer_recv_raises_the_limit_for_programmed_mules() -> None:
    with FakeUwsgi(mules=["uwsgi_mules.mule:run", None], recv_size=131_072):
        assert Mule(1).send(b"x" * 100_000) is True
        with pytest.raises(MessageTooLarge):
            Mule(2).send(b"x" * 100_000)  # signal-only mules read 64 KiB
        with pytest.raises(MessageTooLarge):
            Mule(0).send(b"x" * 100_000)  # the shared queue may reach mule 2


def test_queue_full_after_timeout_losing_nothing_accepted(uwsgi_fake: FakeUwsgi) -> None:
    configure(send_timeout=10)
    sent = 0
    started = time.monotonic()
    # step mode: nothing drains before run_pending(), so it fails at once
    with pytest.raises(QueueFull, match="step mode"):
        while True:
            sample_tasks.on_mule2(sent)
            sent += 1
    assert time.monotonic() - started < 5
    sample_tasks.LOG.clear()
    assert uwsgi_fake.run_pending() == sent
    assert sorted(v for _, v in sample_tasks.LOG) == list(range(sent))


def test_send_waits_for_room_while_a_mule_drains() -> None:
    configure(send_timeout=10)
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"], threaded=True) as fake:
        for number in range(2000):
            sample_tasks.on_mule1_quiet(number)
        fake.join()
    assert fake.stats().queues["mule1"].received == 2000


def test_get_message_and_current(uwsgi_fake: FakeUwsgi) -> None:
    assert Mule.get_current() is None and Mule.get_current_id() == 0
    with pytest.raises(NotInMule):
        Mule.get_message(timeout=0)
    Mule(2).send("hello")
    Farm("busy").send(b"\xff\xfe")
    with uwsgi_fake.as_mule(2):
        assert Mule.get_current() == Mule(2)
        assert Mule.get_message(timeout=0) == "hello"
        assert Mule.get_message(timeout=0) == ""  # farms are not read by default
        raw = Farm.get_message()
        assert raw.encode(errors="surrogateescape") == b"\xff\xfe"
        assert Farm("busy").is_mine is True
    with uwsgi_fake.as_mule(3):
        assert Farm("busy").is_mine is False
        with pytest.raises(NotInMule, match="in no farm"):
            Farm.get_message()


def test_get_farms(uwsgi_fake: FakeUwsgi) -> None:
    assert Farm.get_farms() == [Farm("busy", mules=[1, 2])]
    assert [m.id for m in Farm.get_farms()[0].mules] == [1, 2]


def test_task_errors_are_reported_and_can_be_raised(uwsgi_fake: FakeUwsgi) -> None:
    sample_tasks.boom()
    sample_tasks.add_to_log("after")
    assert uwsgi_fake.run_pending() == 2
    assert [type(e) for _, e in uwsgi_fake.task_errors] == [ZeroDivisionError]
    sample_tasks.boom()
    with pytest.raises(ZeroDivisionError):
        uwsgi_fake.run_pending(raise_errors=True)


def test_existing_hook_is_chained(uwsgi_fake: FakeUwsgi) -> None:
    seen: list[bytes] = []
    uwsgi_fake.set_msg_hook(seen.append)
    sample_tasks.mail("x")  # farm-less signal-only mule 3
    Mule(3).send(b"app message")
    assert uwsgi_fake.run_pending() == 1
    assert seen == [b"app message"]


def test_envelope_and_registry() -> None:
    signer = envelope.Signer(b"k" * 32)
    raw = envelope.encode(signer, "tests.sample_tasks:plain", (1,), {"k": 2}, 3)
    assert envelope.is_envelope(raw)
    call = envelope.decode(signer, raw)
    assert (call.path, call.args, call.kwargs, call.target) == ("tests.sample_tasks:plain", (1,), {"k": 2}, 3)
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.decode(signer, raw[:-3])
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.decode(envelope.Signer(b"x" * 32), raw)
    with pytest.raises(envelope.EnvelopeError):
        envelope.decode(signer, pickle.dumps("x"))
    registry = TaskRegistry()
    assert registry.tasks == {}
    with pytest.raises(UnregisteredTask):
        registry.resolve("tests.sample_tasks:plain")
    registry.register("tests.sample_tasks:add_to_log", sample_tasks.add_to_log.run_local)
    assert registry.resolve("tests.sample_tasks:add_to_log") is sample_tasks.add_to_log.run_local
    assert function_path(sample_tasks.Namespace.method) == "tests.sample_tasks:Namespace.method"


def test_current_backend_is_the_fake(uwsgi_fake: FakeUwsgi) -> None:
    assert current_backend() is uwsgi_fake
