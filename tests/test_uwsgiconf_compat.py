"""A real uwsgiconf ``Section`` with uwsgi-mules, and ``uwsgi_mules.config.Section``
taking uwsgiconf's parameters (needs uwsgiconf: tox env ``uwsgi``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from uwsgi_mules import TopologyError
from uwsgi_mules.config import Section, read_ini_text
from uwsgi_mules.config import uwsgiconf_compat as compat
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.layout.topology import TOPOLOGY_ENV, FarmSpec, Topology

uwsgiconf = pytest.importorskip("uwsgiconf.config", reason="uwsgiconf is not installed here (tox env uwsgi has it)")

#: uWSGI option aliases: uwsgiconf's name -> the one uwsgi-mules renders
ALIASES = {
    "workers": "processes", "pyhome": "home", "stats-server": "stats", "wsgi": "module",
    "python-import": "import", "shared-python-import": "shared-import",
    "spooler-python-import": "spooler-import",
}
#: what uwsgiconf adds by itself (its python plugin line, print lines; ``workers = %k``
#: whose expansion shows as new is dropped unless the call sets ``count``)
UWSGICONF_NOISE = {"plugin", "print"}

CALLS: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("workers", "set_basic_params", (), dict(
        count=3, touch_reload="t1", touch_chain_reload="t2", zombie_reaper=True, limit_addr_space=1024,
        limit_count=50, cpu_affinity=1)),
    ("workers", "set_thread_params", (), dict(enable=True, count=2, count_offload=1, stack_size=512, no_wait=True)),
    ("master_process", "set_basic_params", (), dict(
        enable=True, name="m", no_orphans=True, as_root=True, subproc_check_interval=2, fifo_file="/f")),
    ("main_process", "set_basic_params", (), dict(
        touch_reload="t", priority=5, vacuum=True, binary_path="/b", honour_stdin=True)),
    ("main_process", "change_dir", ("/srv",), {}),
    ("main_process", "change_dir", ("/srv2",), dict(after_app_loading=True)),
    ("python", "set_basic_params", (), dict(
        python_home="/venv", enable_threads=True, search_path="/src", python_binary="py", tracebacker_path="/tb",
        plugin_dir="/plugins", os_env_reload=True, optimization_level=1)),
    ("python", "import_module", ("a",), {}),
    ("python", "import_module", ("b",), dict(shared=True)),
    ("python", "import_module", ("c",), dict(into_spooler=True)),
    ("python", "set_wsgi_params", (), dict(module="pkg.wsgi:app", callable_name="app", env_strategy="holy")),
    ("python", "set_wsgi_params", (), dict(module="/srv/app.py")),
    ("monitoring", "set_stats_params", ("127.0.0.1:9191",), dict(
        enable_http=True, minify=True, no_cores=True, no_metrics=True, push_interval=3)),
    ("monitoring", "set_metrics_params", (), dict(enable=True, store_dir="/m", restore=True, no_cores=True)),
]


def render(section: Any) -> list[tuple[str, str]]:
    if compat.is_uwsgiconf_section(section):
        text = section.as_configuration().format(stamp=False)
    else:
        text = section.as_ini()
    return [(k, v or "") for k, v in read_ini_text(text, section.name)]


def added_by(
    section: Any, group: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[str, str]]:
    before = render(section)
    getattr(getattr(section, group), method)(*args, **kwargs)
    added = [item for item in render(section) if item not in before]  # uwsgiconf: workers = %k, expanded
    if compat.is_uwsgiconf_section(section):
        counts_workers = (group, method) == ("workers", "set_basic_params")
        added = [(ALIASES.get(k, k), "true" if v == "True" else v) for k, v in added
                 if k not in UWSGICONF_NOISE and (k != "workers" or counts_workers)]
    return sorted(added)


@pytest.mark.parametrize(("group", "method", "args", "kwargs"), CALLS, ids=[f"{c[0]}.{c[1]}" for c in CALLS])
def test_same_named_methods_take_uwsgiconf_parameters(group: str, method: str, args: tuple[Any, ...],
                                                      kwargs: dict[str, Any]) -> None:
    theirs = added_by(uwsgiconf.Section(), group, method, args, kwargs)
    ours = added_by(Section(master=False), group, method, args, kwargs)
    assert ours == theirs and ours


def test_sockets_like_uwsgiconf() -> None:
    for section in (uwsgiconf.Section(), Section()):
        sockets = section.networking.sockets
        section.networking.register_socket(sockets.default(":3031"))
        section.networking.register_socket([sockets.http("127.0.0.1:8000")])
        sockets_rendered = [o for o in render(section) if "socket" in o[0]]
        assert sockets_rendered == [("socket", ":3031"), ("http-socket", "127.0.0.1:8000")]


def test_a_later_call_keeps_what_an_earlier_one_set() -> None:
    section = Section()
    section.workers.set_basic_params(count=2)
    section.workers.set_basic_params(zombie_reaper=True)
    section.main_process.set_basic_params(vacuum=True)
    section.main_process.set_basic_params(vacuum=False)  # False removes a flag, as in uwsgiconf
    assert ("processes", "2") in render(section) and ("reaper", "true") in render(section)
    assert "vacuum" not in dict(render(section))


def uwsgiconf_section(**mules_params: Any) -> Any:
    section = uwsgiconf.Section(name="app")
    farms = mules_params.pop("farms", {})
    section.workers.set_mules_params(
        farms=[section.workers.mule_farm(name, ids) for name, ids in farms.items()] or None, **mules_params)
    return section


def test_fake_from_a_uwsgiconf_section() -> None:
    section = uwsgiconf_section(mules=["a.py", "pkg.mod:run"], farms={"x": [2], "y": 1})
    fake = FakeUwsgi.from_section(section, spooler=False)
    assert fake.topology() == Topology.build(["a.py", "pkg.mod:run"], {"x": [2], "y": [1]})
    assert compat.layout_of(section).farms == (FarmSpec("x", (2,)), FarmSpec("y", (1,)))
    counted = FakeUwsgi.from_section(uwsgiconf_section(farms={"a": 2, "b": 1}))
    assert counted.mule_count == 3 and [f.mules for f in counted.topology().farms] == [(1, 2), (3,)]


@pytest.mark.parametrize("params", [
    {"mules": 2, "farms": {"x": [3]}},  # a farm naming a mule that does not exist
    {"mules": 2, "farms": {"x": [1], "y": [2]}, "msg_buffer_recv": 0},
])
def test_layout_validation_of_a_uwsgiconf_section(params: dict[str, Any]) -> None:
    section = uwsgiconf_section(**params)
    if params.get("msg_buffer_recv") == 0:
        section._opts["mule-msg-recv-size"] = 0
    with pytest.raises(TopologyError):
        compat.layout_of(section)
    with pytest.raises(TopologyError):
        FakeUwsgi.from_section(section)


def test_prepare_fixes_the_receive_size_and_adds_the_layout_line(caplog: pytest.LogCaptureFixture) -> None:
    section = uwsgiconf_section(mules=2, farms={"x": [1, 2]}, msg_buffer_recv=131072)
    section.env("OTHER", "1")
    findings = compat.check(section)
    assert [(f.option, f.value, f.fixed) for f in findings] == [("mule-msg-recv-size", "131072", False)]
    fixed = compat.prepare(section)
    assert [(f.option, f.fixed) for f in fixed] == [("mule-msg-recv-size", True)]
    options = render(section)
    assert "mule-msg-recv-size" not in dict(options)
    layouts = [v for k, v in options if k == "env" and v.startswith(TOPOLOGY_ENV + "=")]
    assert len(layouts) == 1 and ("env", "OTHER=1") in options
    layout = Topology.from_env_value(layouts[0].split("=", 1)[1])
    assert layout.recv_size == 131072 and layout.farms == (FarmSpec("x", (1, 2)),)
    assert compat.prepare(section) == [] and len([k for k, _ in render(section) if k == "env"]) == 2
    assert compat.layout_of(section).recv_size == 131072  # read back from the layout line

    section._opts["die-on-no-workers"] = True  # uwsgiconf: master_process.set_exit_events(no_workers=True)
    with caplog.at_level(logging.WARNING, logger="uwsgi_mules"):
        left = compat.prepare(section)
    assert [(f.option, f.fixed) for f in left] == [("die-on-no-workers", False)]
    assert "die-on-no-workers" in caplog.text
    with pytest.raises(TopologyError, match="die-on-no-workers"):
        compat.to_section(section)


def test_to_section_converts_a_uwsgiconf_section() -> None:
    section = uwsgiconf_section(mules=["a.py", "pkg.mod:run"], farms={"x": [1, 2]}, msg_buffer_recv=100000,
                                harakiri_timeout=5)
    section.python.set_wsgi_params(module="pkg.wsgi:app")
    ours = compat.to_section(section)
    assert ours.name == "app"
    assert ours.topology() == Topology.build(["a.py", "pkg.mod:run"], {"x": [1, 2]}, recv_size=100000)
    options = render(ours)
    assert ("mule-harakiri", "5") in options and ("wsgi", "pkg.wsgi:app") in options
    assert "mule-msg-recv-size" not in dict(options)
