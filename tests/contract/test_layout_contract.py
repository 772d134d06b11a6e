"""Layout, capacity and farm scenarios: each runs on fake-step, fake-threaded
and real uWSGI (binary or pyuwsgi, with the plugin when it is loaded)."""

from __future__ import annotations

import socket

import pytest

from uwsgi_mules import MessageTooLarge, TopologyError, UnknownFarm, UnknownMule
from uwsgi_mules.layout.msgpipe import capacity, send_buffer
from uwsgi_mules.layout.topology import MAX_FARM_NAME_BYTES, Topology

from tests.support.server import plugin_path

from . import layout_tasks, tasks
from .harness import Harness

SERVE = "uwsgi_mules.mule:run"
RECORDER = "tests.contract.tasks:recorder"
SLEEPER = "tests.contract.tasks:sleeper"


def kernel_fill(size: int, msg_size: int | None = None) -> int:
    """Messages of ``size`` bytes a socketpair built like uWSGI's
    ``create_msg_pipe()`` accepts before the first refusal, measured here."""
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        for end in ends:
            end.setblocking(False)
            if msg_size:
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, msg_size)
                end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, msg_size)
        payload = b"k" * size
        count = 0
        while True:
            try:
                ends[0].send(payload)
            except BlockingIOError:
                return count
            count += 1
    finally:
        for end in ends:
            end.close()


# -- 1. UWSGI_* environment variables are options too ---------------------------------


@pytest.mark.parametrize("topology_env", [True, False], ids=["rendered-config", "command-line"])
def test_uwsgi_env_mules_and_farms_come_before_the_command_line(harness: Harness, topology_env: bool) -> None:
    env = {"UWSGI_MULES": "2", "UWSGI_FARM": "fromenv:1,2"}
    harness.start([RECORDER], {"reports": [1]}, env=env, topology_env=topology_env)
    # uWSGI reads the environment first: its 2 mules are 1 and 2, the recorder is mule 3
    assert harness.in_worker(layout_tasks.mule_count) == 3
    assert harness.in_worker(tasks.farms) == [("fromenv", [1, 2]), ("reports", [1])]
    assert harness.in_worker(tasks.send_to_mule, 3, "to the recorder") is True
    got = harness.wait_records("received", 1)
    assert [(r["mule"], r["value"]) for r in got] == [(3, "to the recorder")]
    with pytest.raises(UnknownMule):
        harness.in_worker(tasks.send_to_mule, 4, "nobody")


def test_uwsgi_mules_env_alone_and_an_id_past_it_fails_at_once(harness: Harness) -> None:
    harness.start([], env={"UWSGI_MULES": "2"})
    assert harness.in_worker(layout_tasks.mule_count) == 2
    assert harness.in_worker(layout_tasks.timed_send, 2, b"x")["result"] is True
    outcome = harness.in_worker(layout_tasks.timed_send, 3, b"x")
    assert outcome["error"] == "UnknownMule" and outcome["seconds"] < 2


def test_uwsgi_mule_msg_size_env_sets_the_queue_size(harness: Harness) -> None:
    harness.start([SLEEPER], env={"UWSGI_MULE_MSG_SIZE": "100000"})
    expected = capacity(100, send_buffer(100_000))
    assert expected == kernel_fill(100, 100_000)
    assert harness.in_worker(tasks.raw_fill, 1, 100) == expected


# -- 2. ids that cannot be proven are never passed to uWSGI ---------------------------------


def test_unprovable_mule_ids_are_refused_and_the_worker_survives(harness: Harness) -> None:
    # real uWSGI: mule programs behind placeholders, so the layout cannot be read;
    # uwsgi.opt still proves one mule
    harness.start([RECORDER], hide_layout=True)
    if harness.kind == "real" and plugin_path() is None:
        assert harness.in_worker(layout_tasks.mule_count) is None
    for mule in (2, 100_000):
        outcome = harness.in_worker(layout_tasks.timed_send, mule, b"never sent")
        assert outcome["error"] == "UnknownMule" and outcome["seconds"] < 2, outcome
    # raw uWSGI: an id past the last mule is a silent False ("Bad file descriptor")
    assert harness.in_worker(tasks.raw_send, b"x", 2) is False
    # the worker is alive and mule 1 is provable
    assert harness.in_worker(tasks.send_to_mule, 1, "still here") is True
    got = harness.wait_records("received", 1)
    assert [(r["mule"], r["value"]) for r in got] == [(1, "still here")]


# -- 3. capacity follows the kernel ------------------------------------------------------


def test_queue_capacity_follows_the_kernel(harness: Harness) -> None:
    sizes = [20_000, 65_536, 100_000, 1]
    harness.start([SLEEPER] * len(sizes))
    for mule, size in enumerate(sizes, start=1):
        expected = capacity(size, send_buffer(None))
        assert expected == kernel_fill(size), size
        assert harness.in_worker(tasks.raw_fill, mule, size) == expected, size


def test_capacity_and_size_limit_with_a_large_mule_msg_size(harness: Harness) -> None:
    harness.start([SLEEPER, SLEEPER], msg_size=1_000_000, recv_size=1_000_000)
    expected = capacity(100, send_buffer(1_000_000))
    assert expected == kernel_fill(100, 1_000_000)
    assert harness.in_worker(tasks.raw_fill, 1, 100) == expected
    # a 600 KB message fits when wmem_max allows it (the queue is 2 x min(1,000,000, wmem_max))
    fits = send_buffer(1_000_000) - 32 >= 600_000
    assert harness.in_worker(tasks.raw_send, b"m" * 600_000, 2) is fits
    if fits:
        assert harness.in_worker(layout_tasks.timed_send, 2, b"m" * 600_000)["result"] is True
    else:
        with pytest.raises(MessageTooLarge):
            harness.in_worker(tasks.send_to_mule, 2, "m" * 600_000)


# -- 4. Farm.get_message() returns farm messages only --------------------------------------


def test_farm_get_message_skips_the_mules_own_queue(harness: Harness) -> None:
    if harness.kind == "fake-threaded":
        pytest.skip("in_mule runs beside the mule's own thread there, which would take the messages")
    harness.start([SERVE], {"solo": [1]})
    assert harness.in_mule(1, layout_tasks.farm_only_receive, "solo") == ("for the farm", "for the mule itself")


# -- 5. farm names uWSGI cannot keep ---------------------------------------------------------


def test_farm_names_up_to_254_bytes_work_longer_ones_are_refused(harness: Harness) -> None:
    longest = "é" * (MAX_FARM_NAME_BYTES // 2)  # 254 bytes in UTF-8
    too_long = longest + "x"
    with pytest.raises(TopologyError, match="254 bytes"):
        Topology.build([RECORDER], {too_long: [1]})
    with pytest.raises(TopologyError, match="254 bytes"):
        harness.start([RECORDER], {too_long: [1]})
    harness.start([RECORDER], {longest: [1]})
    assert harness.in_worker(tasks.send_to_farm, longest, "to the long farm") is True
    got = harness.wait_records("received", 1)
    assert [(r["mule"], r["value"]) for r in got] == [(1, "to the long farm")]
    with pytest.raises(UnknownFarm, match="254 bytes"):
        harness.in_worker(tasks.send_to_farm, too_long, "nobody")
