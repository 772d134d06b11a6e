"""The fake's raw ``uwsgi`` functions follow uWSGI 2.0 (see also tests/contract)."""

from __future__ import annotations

import threading
import time

import pytest

from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.fake.queues import MessageQueue, message_cost


@pytest.mark.parametrize(("size", "capacity"), [(1, 278), (100, 278), (1000, 93), (10_000, 13)])
def test_capacity_model_matches_measured_uwsgi(size: int, capacity: int) -> None:
    fake = FakeUwsgi(mules=1)
    accepted = 0
    while fake.mule_msg(b"x" * size, 1):
        accepted += 1
    assert accepted == capacity
    assert fake.queue(1).refused == 1
    assert any("MULE MSG QUEUE IS FULL" in line for line in fake.log_lines)


def test_message_cost_is_a_power_of_two_plus_overhead() -> None:
    assert message_cost(100) == 256 + 512
    assert message_cost(1000) == 256 + 2048


def test_size_limit_is_socket_buffer_minus_32() -> None:
    fake = FakeUwsgi(mules=1)
    assert fake.mule_msg(b"x" * 212_960, 1) is True
    assert fake.mule_msg(b"x" * 212_961, 1) is False
    assert MessageQueue("q", 1000).max_message == 968


def test_mule_msg_size_option_changes_the_budget() -> None:
    fake = FakeUwsgi(mules=1, msg_size=8192)
    assert fake.queue(1).budget == 16384  # Linux doubles SO_SNDBUF


def test_value_and_type_errors() -> None:
    with pytest.raises(ValueError, match="no mule configured"):
        FakeUwsgi(mules=0).mule_msg(b"x")
    fake = FakeUwsgi(mules=2, farms={"busy": [1, 2]})
    with pytest.raises(ValueError, match="unknown farm"):
        fake.mule_msg(b"x", b"nope")
    with pytest.raises(ValueError, match="invalid mule"):
        fake.mule_msg(b"x", "busy")  # str farm names fail on Python 3
    with pytest.raises(ValueError, match="invalid mule"):
        fake.mule_msg(b"x", 1.5)
    with pytest.raises(TypeError):
        fake.mule_msg(12345)
    assert fake.mule_msg(b"x", 7) is False  # out of range: "Bad file descriptor"
    assert fake.farm_msg("nope", b"x") is None  # silently ignored
    with pytest.raises(TypeError):
        fake.farm_msg(b"busy", b"x")
    with pytest.raises(ValueError, match="only in a mule"):
        fake.mule_get_msg()
    with pytest.raises(ValueError, match="only in a mule"):
        fake.farm_get_msg()
    with fake.as_mule(1), pytest.raises(TypeError):
        fake.mule_get_msg(timeout=0.5)


def test_receive_order_truncation_and_timeout() -> None:
    fake = FakeUwsgi(mules=2, farms={"busy": [1]})
    fake.farm_msg("busy", "farm first")
    fake.mule_msg("shared", 0)
    fake.mule_msg(b"own" * 10, 1)
    with fake.as_mule(1):
        assert fake.mule_get_msg(buffer_size=3) == b"own"  # own queue first, truncated
        assert fake.mule_get_msg() == b"shared"
        assert fake.mule_get_msg(farms=False, timeout=0) == b""  # farms not polled
        assert fake.mule_get_msg() == b"farm first"
        started = time.monotonic()
        assert fake.mule_get_msg(timeout=1) == b""
        assert 0.9 < time.monotonic() - started < 3


def test_identity_and_farms() -> None:
    fake = FakeUwsgi(mules=3, farms={"a": [1, 2], "b": [2]})
    assert (fake.mule_id(), fake.worker_id()) == (0, 1)
    with fake.as_mule(2):
        assert (fake.mule_id(), fake.worker_id()) == (2, 0)
        assert fake.in_farm("a") is True and fake.in_farm("b") is True and fake.in_farm() is True
    with fake.as_mule(3):
        assert fake.in_farm() is None and fake.in_farm("a") is None
    assert fake.in_farm("a") is None
    with pytest.raises(ValueError):
        fake.as_mule(4)


def test_threads_of_one_mule_wait_together() -> None:
    fake = FakeUwsgi(mules=1)
    got: list[bytes] = []

    def wait() -> None:
        with fake.as_mule(1):
            got.append(fake.mule_get_msg(timeout=5) or b"")

    threads = [threading.Thread(target=wait) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    fake.mule_msg(b"a", 1)
    fake.mule_msg(b"b", 1)
    for thread in threads:
        thread.join(5)
    assert sorted(got) == [b"a", b"b"]


def test_signal_only_mule_without_hook_logs_the_message() -> None:
    with FakeUwsgi(mules=1) as fake:
        fake.mule_msg(b"hello", 1)
        assert fake.run_pending() == 0
        assert "*** mule 1 received a 5 bytes message ***" in fake.log_lines


def test_custom_program_messages_stay_queued_in_step_mode() -> None:
    with FakeUwsgi(mules=["tests.contract.tasks:sleeper"]) as fake:
        fake.mule_msg(b"hello", 1)
        assert fake.run_pending() == 0
        assert fake.pending() == 1


def test_stats_count_sent_refused_received() -> None:
    fake = FakeUwsgi(mules=1)
    while fake.mule_msg(b"x" * 100, 1):
        pass
    with fake.as_mule(1):
        fake.mule_get_msg()
    counters = fake.stats().queues["mule1"]
    assert (counters.sent, counters.refused, counters.received) == (278, 1, 1)
    assert counters.depth_messages == 277 and counters.depth_bytes == 27_700


def test_threaded_join_times_out_when_nobody_reads() -> None:
    with FakeUwsgi(mules=["tests.contract.tasks:sleeper"], threaded=True) as fake:
        fake.mule_msg(b"x", 1)
        with pytest.raises(TimeoutError):
            fake.join(timeout=0.2)
