"""Layout fidelity without uWSGI: UWSGI_* variables, what uwsgi.opt proves,
farm name limits, unprovable mule ids, the fake's step mode on a full queue.
The same cases run on real uWSGI in tests/contract/test_layout_contract.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests import sample_tasks
from uwsgi_mules import Farm, Mule, QueueFull, TopologyError, UnknownFarm, UnknownMule, configure
from uwsgi_mules.config import Section
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.runtime.targets import farm_target, mule_target, validate
from uwsgi_mules.layout.topology import MAX_FARM_NAME_BYTES, FarmSpec, Topology
from uwsgi_mules.layout.uwsgi_args import (
    opt_mule_count_bound,
    options_from_argv,
    options_from_environ,
    process_environ,
)

# -- UWSGI_* variables ---------------------------------------------------------------------


def test_environment_options_come_before_the_command_line() -> None:
    environ = {"UWSGI_MULES": "2", "UWSGI_FARM": "env:1", "PATH": "/bin", "UWSGI_RELOADS": "3"}
    options = options_from_argv(["uwsgi", "--mule=app.mules:run", "--farm=cli:3"], environ=environ)
    topology = Topology.from_options(options)
    assert [m.kind for m in topology.mules] == ["signal", "signal", "callable"]
    assert [f.option_value() for f in topology.farms] == ["env:1", "cli:3"]


def test_uwsgi_ini_variable_loads_the_file(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text("[uwsgi]\nmule = app.mules:run\nmule-msg-size = 50000\n")
    options = options_from_argv(["uwsgi", "--mule"], environ={"UWSGI_INI": str(ini)})
    topology = Topology.from_options(options)
    assert topology.mule_count == 2 and topology.mules[0].kind == "callable" and topology.msg_size == 50000


def test_rendered_layout_after_environment_options() -> None:
    rendered = Topology.build(["app.mules:run"], {"reports": [1]}, recv_size=100_000)
    assert rendered.after_options(options_from_environ({"HOME": "/root"})) is rendered
    merged = rendered.after_options(options_from_environ({"UWSGI_MULE": "", "UWSGI_MULE_MSG_SIZE": "99999"}))
    assert [m.kind for m in merged.mules] == ["signal", "callable"]
    # the farm keeps naming mule 1, which is now the environment's mule (as in uWSGI)
    assert merged.farms == (FarmSpec("reports", (1,)),)
    assert merged.msg_size == 99999 and merged.recv_size == 100_000


def test_process_environ_reads_the_start_environment() -> None:
    environ = process_environ()
    assert environ is not None and environ.get("PATH") == os.environ.get("PATH")
    assert process_environ(2**22 + 12345) is None


# -- what uwsgi.opt proves --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opt", "bound"),
    [
        ({}, 0),
        ({"mule": True}, 1),
        ({"mule": b"app.mules:run", "mules": b"3"}, 4),
        ({"mules": b"2"}, 2),
        ({"mules": [b"1", b"5"]}, 5),
        ({"mules": b"lots"}, 0),
    ],
)
def test_opt_mule_count_bound(opt: dict[str, object], bound: int) -> None:
    assert opt_mule_count_bound(opt) == bound


def test_a_layout_must_agree_with_uwsgi_opt() -> None:
    layout = Topology.build(["app.mules:run", None, None], {"a": [1], "b": [2, 3]}, msg_size=8192)
    opt = {"mule": True, "farm": b"b:2,3", "mule-msg-size": b"8192"}
    assert layout.agrees_with_opt(opt)
    assert not layout.agrees_with_opt({**opt, "mules": b"3"})  # at least 4 mules
    assert not layout.agrees_with_opt({**opt, "farm": b"c:1"})
    assert not layout.agrees_with_opt({**opt, "mule-msg-size": b"4096"})
    assert not layout.agrees_with_opt({"farm": b"b:2,3", "mule-msg-size": b"8192"})  # no mule option


def test_unknown_layout_lets_only_provable_mule_ids_through() -> None:
    validate(mule_target(2), None, provable_mules=2)
    validate(mule_target(0), None, provable_mules=0)  # the shared queue: uWSGI checks it
    for mule, provable in ((3, 2), (1, None), (100_000, 2)):
        with pytest.raises(UnknownMule, match="cannot prove"):
            validate(mule_target(mule), None, provable_mules=provable)


# -- farm names --------------------------------------------------------------------------------


def test_farm_names_uwsgi_cannot_keep_are_refused_everywhere() -> None:
    longest = "ü" * (MAX_FARM_NAME_BYTES // 2)
    too_long = "x" * (MAX_FARM_NAME_BYTES + 1)
    assert Topology.build(1, {longest: [1]}).farm(longest) is not None
    with pytest.raises(TopologyError, match="254 bytes"):
        Topology.build(1, {too_long: [1]})
    with pytest.raises(TopologyError, match="254 bytes"):
        FakeUwsgi(mules=1, farms={longest + "x": [1]})
    section = Section()
    with pytest.raises(TopologyError, match="254 bytes"):
        section.workers.set_mules_params(1, farms=[section.workers.mule_farm(too_long, [1])])
    with pytest.raises(TopologyError, match="254 bytes"):
        Topology.from_options([("mule", None), ("farm", f"{too_long}:1")])
    with pytest.raises(UnknownFarm, match="254 bytes"):
        farm_target(too_long)
    assert farm_target(longest).farm == longest


# -- Farm.get_message -------------------------------------------------------------------------


def test_farm_get_message_returns_farm_messages_only() -> None:
    with FakeUwsgi(mules=2, farms={"busy": [1]}) as fake:
        Mule(1).send("own")
        Mule(0).send("shared")
        Farm("busy").send("farm")
        with fake.as_mule(1):
            assert Farm.get_message() == "farm"
        assert fake.pending() == 2  # the own and the shared message stay queued
        with fake.as_mule(1):
            assert {Mule.get_message(timeout=0), Mule.get_message(timeout=0)} == {"own", "shared"}


def test_farm_get_message_refuses_what_farm_get_msg_cannot_do() -> None:
    with FakeUwsgi(mules=1, farms={"busy": [1]}) as fake, fake.as_mule(1):
        Farm("busy").send("farm")
        with pytest.raises(ValueError, match="cannot time out"):
            Farm.get_message(timeout=0)
        with pytest.raises(ValueError, match="signal handlers"):
            Farm.get_message(signals=True)
        with pytest.raises(ValueError, match="buffer_size"):
            Farm.get_message(buffer_size=65537)
        assert Farm.get_message(buffer_size=3) == "far"


# -- raw sends to ids past the last mule ----------------------------------------------------------


def test_fake_tells_a_bad_target_from_a_full_queue() -> None:
    with FakeUwsgi(mules=1) as fake:
        assert fake.mule_msg(b"x", 2) is False
        assert fake.send_refused_bad_target() is True
        while fake.mule_msg(b"x", 1):
            pass
        assert fake.send_refused_bad_target() is False


# -- step mode on a full queue (issue: 1,000 offloads, then run_pending) -----------------------------


def test_step_mode_full_queue_fails_at_once_and_says_why() -> None:
    configure(send_timeout=10)
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"] * 2) as fake:
        sent = 0
        started = time.monotonic()
        with pytest.raises(QueueFull, match=r"step mode.*run_pending\(\).*threaded=True"):
            for number in range(1000):
                sample_tasks.on_mule2(number)
                sent += 1
        assert time.monotonic() - started < 2
        assert 200 < sent < 1000
        sample_tasks.LOG.clear()
        assert fake.run_pending() == sent  # nothing accepted was lost
        for number in range(100):  # once drained, the queue takes messages again
            sample_tasks.on_mule2(number)
        assert fake.run_pending() == 100
