"""Config generation (no uWSGI needed); tests/real/test_config_real.py boots it."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples import render_inis
from uwsgi_mules import TopologyError
from uwsgi_mules.config import Section
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.topology import ENTRY_POINT, TOPOLOGY_ENV, Topology, entry_script_path
from uwsgi_mules.uwsgi_args import options_from_argv, options_from_ini_text


def test_counts_and_farms_like_uwsgiconf() -> None:
    section = Section()
    workers = section.workers
    workers.set_mules_params(farms=[workers.mule_farm("first", 2), workers.mule_farm("second", 1)])
    topology = section.topology()
    assert topology.mule_count == 3
    assert [f.option_value() for f in topology.farms] == ["first:1,2", "second:3"]
    ini = section.as_ini()
    assert "mules = 3\n" in ini and "farm = first:1,2\n" in ini and "farm = second:3\n" in ini


def test_mule_specs_render_in_order() -> None:
    section = Section()
    section.workers.set_mules_params([ENTRY_POINT, True, None, "", "worker.py"], msg_buffer=8192)
    lines = section.as_ini().splitlines()
    assert [ln for ln in lines if ln.startswith("mule")] == [
        f"mule = {ENTRY_POINT}", "mule =", "mule =", "mule =", "mule = worker.py", "mule-msg-size = 8192",
    ]


def test_msg_buffer_recv_is_not_an_invalid_option() -> None:
    section = Section()
    section.workers.set_mules_params([ENTRY_POINT], msg_buffer_recv=131072)
    ini = section.as_ini()
    assert "mule-msg-recv-size" not in ini  # uWSGI 2.0 refuses it under --strict
    env_line = next(ln for ln in ini.splitlines() if ln.startswith(f"env = {TOPOLOGY_ENV}="))
    assert Topology.from_env_value(env_line.split("=", 2)[2]).recv_size == 131072


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mules": 2, "farms": "FARMS_BAD_ID"}, "names mule 3"),
        ({"mules": -1}, ">= 0"),
        ({"mules": ["not-a-program"]}, "invalid mule program"),
        ({"mules": 2, "farms": "FARMS_DUP"}, "defined twice"),
        ({"mules": 1, "msg_buffer": 0}, "positive"),
    ],
)
def test_invalid_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    section = Section()
    farm = section.workers.mule_farm
    farms = {"FARMS_BAD_ID": [farm("x", [3])], "FARMS_DUP": [farm("x", [1]), farm("x", [2])]}
    if isinstance(kwargs.get("farms"), str):
        kwargs = {**kwargs, "farms": farms[kwargs["farms"]]}  # type: ignore[index]
    with pytest.raises(TopologyError, match=message):
        section.workers.set_mules_params(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(TopologyError):
        section.workers.mule_farm("a:b", 1)


def test_layout_options_only_through_set_mules_params_and_env_names_checked() -> None:
    section = Section()
    with pytest.raises(TopologyError, match="set_mules_params"):
        section.set_option("mule", "x.py")
    with pytest.raises(TopologyError, match="UWSGI_"):
        section.set_env("UWSGI_FOO", "1")


def test_lazy_apps_renders_the_entry_point_as_a_script() -> None:
    section = Section()
    section.workers.set_basic_params(lazy_apps=True)
    section.workers.set_mules_params([ENTRY_POINT, None])
    assert section.topology().mules[0].program == entry_script_path()
    assert f"mule = {entry_script_path()}" in section.as_ini()


def test_ini_round_trip_and_fake(tmp_path: Path) -> None:
    section = render_inis.django_style()
    path = section.write_ini(tmp_path / "app.ini")
    again = Section.from_ini(path)
    assert again.as_ini() == section.as_ini()
    assert again.topology() == section.topology()
    fake = FakeUwsgi.from_ini(path)
    assert fake.topology() == FakeUwsgi.from_section(section).topology() == section.topology()


@pytest.mark.parametrize("name", sorted(render_inis.EXAMPLES))
def test_committed_example_inis_are_up_to_date(name: str) -> None:
    committed = (render_inis.INI_DIR / name).read_text()
    assert committed == render_inis.EXAMPLES[name]().as_ini(), "run: python -m examples.render_inis"


def test_argv_parsing() -> None:
    argv = ["python", "-m", "x", "--master", "--mule", "--mule=a.py", "--mules", "2", "--farm", "f:1,3",
            "--mule-msg-size=4096", "--processes", "2"]
    options = options_from_argv(argv[2:])
    assert ("mule", None) in options and ("mule", "a.py") in options and ("mules", "2") in options
    topology = Topology.from_options(options_from_argv(["uwsgi", *argv[3:]]))
    assert [m.kind for m in topology.mules] == ["signal", "script", "signal", "signal"]
    assert topology.farms[0].mules == (1, 3) and topology.msg_size == 4096


def test_argv_expands_ini(tmp_path: Path) -> None:
    ini = tmp_path / "a.ini"
    ini.write_text("[uwsgi]\nmule =\nfarm = a:1,2\n[other]\nmule = x.py\n")
    options = options_from_argv(["uwsgi", "--mule=y.py", "--ini", str(ini), "--ini", f"{ini}:other"])
    assert [v for k, v in options if k == "mule"] == ["y.py", "", "x.py"]


def test_ini_text_parsing() -> None:
    text = "; comment\n# comment\n[uwsgi]\nmaster = true\nmule =\nflag\n[x]\nmule = no.py\n"
    assert options_from_ini_text(text) == [("master", "true"), ("mule", ""), ("flag", None)]
