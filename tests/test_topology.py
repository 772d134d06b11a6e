"""Topology: the layout shared by config generation, the fake and the real backend."""

from __future__ import annotations

import pytest

from uwsgi_mules import TopologyError
from uwsgi_mules.layout.topology import FarmSpec, MuleSpec, Topology, parse_farm


def test_build_from_count_and_specs() -> None:
    topology = Topology.build(["uwsgi_mules.mule:run", None, "worker.py"], {"busy": [1, 2]})
    assert [m.kind for m in topology.mules] == ["callable", "signal", "script"]
    assert topology.farm("busy") == FarmSpec("busy", (1, 2))
    assert topology.farms_of(2) == ("busy",) and topology.farms_of(3) == ()
    assert Topology.build(3).mules == (MuleSpec(), MuleSpec(), MuleSpec())


@pytest.mark.parametrize(
    ("mules", "farms", "message"),
    [
        (2, {"busy": [3]}, "names mule 3"),
        (2, {"busy": []}, "has no mules"),
        (-1, None, ">= 0"),
        (["not-a-program"], None, "invalid mule program"),
        ("3", None, "count or a list"),
        (1, {"a:b": [1]}, "invalid farm name"),
    ],
)
def test_invalid_layouts_are_refused(mules: object, farms: object, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        Topology.build(mules, farms)  # type: ignore[arg-type]


def test_options_in_order() -> None:
    topology = Topology.from_options(
        [("mule", None), ("mules", "2"), ("mule", "app.py"), ("farm", "a:1,4"), ("farm", "b:2"), ("mule-msg-size", "8192")]
    )
    assert [m.kind for m in topology.mules] == ["signal", "signal", "signal", "script"]
    assert [f.option_value() for f in topology.farms] == ["a:1,4", "b:2"]
    assert topology.socket_buffer == 16384 and topology.max_send_size == 16352


def test_env_round_trip_is_ini_safe() -> None:
    topology = Topology.build(["uwsgi_mules.mule:run", None], {"busy": [1, 2]}, msg_size=4096, recv_size=131072)
    value = topology.to_env_value()
    assert "%" not in value and ";" not in value and "\n" not in value
    assert Topology.from_env_value(value) == topology
    with pytest.raises(TopologyError):
        Topology.from_env_value("{not json")


def test_parse_farm_errors() -> None:
    assert parse_farm("x:1,2") == FarmSpec("x", (1, 2))
    for bad in ("x", ":1", "x:a"):
        with pytest.raises(TopologyError):
            parse_farm(bad)
