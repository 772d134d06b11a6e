"""Config generation and uWSGI option reading (no uWSGI needed).

tests/real/test_config_real.py boots the same configs under real uWSGI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from examples import render_inis
from uwsgi_mules import TopologyError
from uwsgi_mules.config import Section, read_ini, read_ini_text
from uwsgi_mules.config.options import KNOWN_OPTIONS
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.layout.topology import ENTRY_POINT, TOPOLOGY_ENV, Topology, entry_script_path
from uwsgi_mules.layout.uwsgi_args import options_from_argv, options_from_ini, options_from_ini_text


def every_option_section(workdir: Path, repo_root: Path) -> Section:
    """A runnable section using every option the typed API can emit except
    ``wsgi-file``, ``http-socket``, ``mules``, ``lazy-apps`` and ``plugin``
    (see :func:`other_options_section`)."""
    section = Section()
    section.workers.set_basic_params(count=1, threads=2, enable_threads=True)
    section.main_process.set_basic_params(die_on_term=True, chdir=str(repo_root), strict=True, vacuum=True)
    section.python.set_basic_params(
        python_home=os.environ.get("VIRTUAL_ENV_FOR_TESTS") or None,
        search_path=str(repo_root), import_modules="json", shared_import="os",
    )
    section.python.set_wsgi_params(module="examples.simple_app.wsgi:application")
    section.networking.register_socket(str(workdir / "app.sock"))
    section.monitoring.set_stats_params(str(workdir / "stats.sock"))
    section.monitoring.set_metrics_params(enable=True, store_dir=str(workdir / "metrics"))
    section.set_env("MY_SETTING", "50% off")
    # uwsgiconf's parameters of the same methods
    section.workers.set_basic_params(
        touch_reload=str(workdir / "touch-workers"), touch_chain_reload=str(workdir / "touch-chain"),
        zombie_reaper=True, limit_addr_space=65536, limit_count=100000, cpu_affinity=1,
    )
    section.workers.set_thread_params(count_offload=1, stack_size=512, no_wait=True)
    section.master_process.set_basic_params(
        enable=True, name="mules-master", no_orphans=True, as_root=True, subproc_check_interval=1,
        fifo_file=str(workdir / "master.fifo"),
    )
    section.main_process.set_basic_params(
        touch_reload=str(workdir / "touch-all"), priority=0, binary_path=str(workdir / "uwsgi"), honour_stdin=True,
    )
    section.main_process.change_dir(str(repo_root), after_app_loading=True)
    section.python.set_basic_params(
        python_binary="python3", tracebacker_path=str(workdir / "tracebacker"), plugin_dir=str(workdir),
        os_env_reload=True, optimization_level=0,
    )
    section.python.import_module("json", into_spooler=True)
    section.python.set_wsgi_params(callable_name="application", env_strategy="holy")
    section.monitoring.set_stats_params(
        enable_http=True, minify=True, no_cores=True, no_metrics=True, push_interval=3,
    )
    section.monitoring.set_metrics_params(restore=True, no_cores=True)
    section.workers.set_mules_params(
        [ENTRY_POINT, None], farms=[section.workers.mule_farm("f", [1, 2])],
        touch_reload=str(workdir / "touch"), harakiri_timeout=30, reload_mercy=5,
        msg_buffer=65536, msg_buffer_recv=65536,
    )
    return section


def other_options_section(port: int, wsgi_file: Path) -> Section:
    """The options :func:`every_option_section` leaves out (``plugin`` is
    booted by the plugin tests)."""
    section = Section()
    section.python.set_wsgi_params(wsgi_file=str(wsgi_file))
    section.main_process.set_basic_params(lazy_apps=True)
    section.networking.http_socket(f"127.0.0.1:{port}")
    section.workers.set_mules_params(1)
    return section


def test_the_option_builders_cover_every_known_option(tmp_path: Path) -> None:
    home_section = Section()
    home_section.python.set_basic_params(python_home="/venv")
    rendered = {key for key, _ in every_option_section(tmp_path, tmp_path).items()}
    rendered |= {key for key, _ in other_options_section(8000, tmp_path / "app.py").items()}
    rendered |= {key for key, _ in home_section.items()} | {"plugin"}
    assert rendered == KNOWN_OPTIONS


# -- set_mules_params ------------------------------------------------------------------


def test_farm_counts_take_consecutive_mules_and_set_the_mule_count() -> None:
    section = Section()
    workers = section.workers
    workers.set_mules_params(farms=[workers.mule_farm("first", 2), workers.mule_farm("second", "1")])
    topology = section.topology()
    assert topology.mule_count == 3
    assert [f.option_value() for f in topology.farms] == ["first:1,2", "second:3"]
    assert section.as_ini().splitlines()[2:5] == ["mules = 3", "farm = first:1,2", "farm = second:3"]


def test_farm_ids_and_counts_mix_like_uwsgiconf() -> None:
    section = Section()
    farm = section.workers.mule_farm
    first, second = farm("a", [3, 1]), farm("b", 2)
    section.workers.set_mules_params(farms=[first, second])
    # uwsgiconf: the mule count is the sum of the farm sizes; a count starts at 1
    assert section.topology().mule_count == 4
    assert [f.mules for f in section.topology().farms] == [(3, 1), (1, 2)]
    assert second.mule_numbers == 2, "the MuleFarm passed in is not modified"


def test_a_single_farm_is_accepted_as_in_uwsgiconf_docs() -> None:
    section = Section()
    section.workers.set_mules_params(farms=section.workers.mule_farm("myfarm", 2))
    assert section.topology().farm("myfarm").mules == (1, 2)  # type: ignore[union-attr]


def test_mule_specs_render_in_order() -> None:
    section = Section()
    section.workers.set_mules_params([ENTRY_POINT, True, None, "", "worker.py"], msg_buffer=8192)
    lines = [ln for ln in section.as_ini().splitlines() if ln.startswith("mule")]
    assert lines == [f"mule = {ENTRY_POINT}", "mule =", "mule =", "mule =", "mule = worker.py", "mule-msg-size = 8192"]
    assert [m.kind for m in section.topology().mules] == ["callable", "signal", "signal", "signal", "script"]


def test_other_mule_params_render_as_uwsgiconf_does() -> None:
    section = Section(master=False)
    section.workers.set_mules_params(
        1, touch_reload=["a", "b"], harakiri_timeout=3, reload_mercy=4, msg_buffer=10
    )
    assert section.as_ini().splitlines()[1:7] == [
        "touch-mules-reload = a", "touch-mules-reload = b", "mule-harakiri = 3", "mule-reload-mercy = 4",
        "mules = 1", "mule-msg-size = 10",
    ]


def test_msg_buffer_recv_travels_in_the_layout_not_as_an_option() -> None:
    section = Section()
    section.workers.set_mules_params([ENTRY_POINT], msg_buffer_recv=131072)
    ini = section.as_ini()
    assert "mule-msg-recv-size" not in ini  # uWSGI 2.0 refuses it under --strict
    env_line = next(ln for ln in ini.splitlines() if ln.startswith(f"env = {TOPOLOGY_ENV}="))
    assert Topology.from_env_value(env_line.split("=", 2)[2]).recv_size == 131072
    assert section.topology().recv_size == 131072


def test_zero_buffers_mean_the_default() -> None:
    section = Section()
    section.workers.set_mules_params(1, msg_buffer=0, msg_buffer_recv=0)
    assert section.topology() == Topology.build(1)
    assert "mule-msg-size" not in section.as_ini()


def test_no_mules_no_layout_env() -> None:
    section = Section()
    section.workers.set_mules_params(0)
    assert TOPOLOGY_ENV not in section.as_ini()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mules": 2, "farms": [("x", [3])]}, "names mule 3"),
        ({"mules": 1, "farms": [("x", 2)]}, "names mule 2"),
        ({"mules": -1}, ">= 0"),
        ({"mules": True}, "count or a list"),
        ({"mules": "3"}, "count or a list"),
        ({"mules": ["not-a-program"]}, "invalid mule program"),
        ({"mules": [5]}, "invalid mule entry"),
        ({"mules": 2, "farms": [("x", [1]), ("x", [2])]}, "defined twice"),
        ({"farms": [("x", 0)]}, "at least one mule"),
        ({"farms": [("x", -2)]}, "at least one mule"),
        ({"farms": [("x", "1,2")]}, "count or a list"),
        ({"farms": [("x", [1, "b"])]}, "invalid mule id"),
        ({"farms": [("x", [])]}, "no mules"),
        ({"mules": 2, "farms": ["x:1"]}, "mule_farm"),
        ({"mules": 1, "msg_buffer": -1}, "msg_buffer"),
        ({"mules": 1, "msg_buffer_recv": -5}, "msg_buffer_recv"),
        ({"mules": 1, "harakiri_timeout": -1}, "harakiri_timeout"),
        ({"mules": 1, "reload_mercy": "5"}, "reload_mercy"),
        ({"mules": 1, "touch_reload": "a\nb"}, "one line"),
    ],
)
def test_invalid_mule_params_are_refused(kwargs: dict[str, object], message: str) -> None:
    section = Section()
    farms = kwargs.get("farms")
    if isinstance(farms, list):
        kwargs = {**kwargs, "farms": [section.workers.mule_farm(*f) if isinstance(f, tuple) else f for f in farms]}
    with pytest.raises(TopologyError, match=message):
        section.workers.set_mules_params(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a:b", " a", 3])
def test_invalid_farm_names_are_refused(name: object) -> None:
    with pytest.raises(TopologyError, match="farm name"):
        Section().workers.mule_farm(name, 1)  # type: ignore[arg-type]


def test_worker_count_is_checked() -> None:
    with pytest.raises(TopologyError, match=">= 1"):
        Section().workers.set_basic_params(count=0)


# -- general options and values ---------------------------------------------------------------


def test_layout_options_only_through_set_mules_params_and_env_names_checked() -> None:
    section = Section()
    for key in ("mule", "mules", "farm", "mule-msg-size", "mule-msg-recv-size"):
        with pytest.raises(TopologyError, match="set_mules_params"):
            section.set_option(key, "x.py")
    with pytest.raises(TopologyError, match="UWSGI_"):
        section.set_env("UWSGI_FOO", "1")
    with pytest.raises(TopologyError, match="rendered from the mule layout"):
        section.set_env(TOPOLOGY_ENV, "{}")
    with pytest.raises(TopologyError, match="variable name"):
        section.set_env("A=B", "1")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("chdir", "$(HOME)", r"expands \$\("),
        ("chdir", "@(file)", r"expands @\("),
        ("chdir", "%(processes)", r"expands %\("),
        ("chdir", " /srv", "whitespace"),
        ("chdir", "/srv\n[other]", "one line"),
        ("bad key", "1", "option name"),
        ("-x", "1", "option name"),
        ("", "1", "option name"),
    ],
)
def test_values_must_reach_uwsgi_unchanged(key: str, value: str, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        Section().set_option(key, value)


def test_set_option_replaces_or_repeats_and_none_unsets() -> None:
    section = Section(master=False)
    section.set_option("processes", 2).set_option("processes", 4)
    section.set_option("pythonpath", "a", multi=True).set_option("pythonpath", "b", multi=True)
    section.set_option("vacuum", True).set_option("vacuum", None)
    assert section.as_ini() == "[uwsgi]\nprocesses = 4\npythonpath = a\npythonpath = b\n"


def test_percent_is_escaped_in_ini_and_read_back(tmp_path: Path) -> None:
    section = Section()
    section.set_env("DISCOUNT", "50% %d")
    assert "env = DISCOUNT=50%% %%d\n" in section.as_ini()
    assert ("env", "DISCOUNT=50% %d") in read_ini(section.write_ini(tmp_path / "a.ini"))
    assert "--env=DISCOUNT=50% %d" in section.as_args()


def test_python_and_main_process_params() -> None:
    section = Section(master=False)
    section.python.set_basic_params(
        python_home="/venv", search_path=["a", "b"], import_modules="m", shared_import=["s"]
    )
    section.main_process.set_basic_params(die_on_term=True, lazy_apps=True, chdir="/srv")
    section.networking.register_socket(":3031").networking.http_socket("127.0.0.1:8000")
    assert section.as_ini().splitlines()[1:] == [
        "home = /venv", "pythonpath = a", "pythonpath = b", "import = m", "shared-import = s",
        "die-on-term = true", "lazy-apps = true", "chdir = /srv", "socket = :3031", "http-socket = 127.0.0.1:8000",
    ]
    assert section.lazy_apps


def test_invalid_section_name() -> None:
    with pytest.raises(TopologyError, match="section name"):
        Section("a]b")


def test_lazy_apps_renders_the_entry_point_as_a_script() -> None:
    section = Section()
    section.workers.set_basic_params(lazy_apps=True)
    section.workers.set_mules_params([ENTRY_POINT, None])
    assert section.topology().mules[0].program == entry_script_path()
    assert f"mule = {entry_script_path()}" in section.as_ini()


def test_as_args_round_trips_through_the_argv_reader() -> None:
    section = render_inis.django_style()
    args = section.as_args()
    assert args[:2] == ["--master", "--die-on-term"] and "--mule" in args
    assert Topology.from_options(options_from_argv(["uwsgi", *args])) == section.topology()


# -- reading back ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(render_inis.EXAMPLES))
def test_ini_round_trip_and_fake(tmp_path: Path, name: str) -> None:
    section = render_inis.EXAMPLES[name]()
    path = section.write_ini(tmp_path / name)
    again = Section.from_ini(path)
    assert again.as_ini() == section.as_ini()
    assert again.topology() == section.topology()
    assert FakeUwsgi.from_ini(path).topology() == FakeUwsgi.from_section(section).topology() == section.topology()


@pytest.mark.parametrize("name", sorted(render_inis.EXAMPLES))
def test_committed_example_inis_are_up_to_date(name: str) -> None:
    committed = (render_inis.INI_DIR / name).read_text()
    assert committed == render_inis.EXAMPLES[name]().as_ini(), "run: python -m examples.render_inis"


def test_examples_include_a_django_style_and_a_demo_layout() -> None:
    django = render_inis.django_style().topology()
    assert [m.kind for m in django.mules] == ["callable", "callable", "signal"]
    assert {f.name: f.mules for f in django.farms} == {"reports": (1, 2), "mail": (3,)}
    assert not render_inis.django_style().lazy_apps
    demo = render_inis.demo().topology()
    assert [m.program for m in demo.mules] == [ENTRY_POINT, ENTRY_POINT] and len(demo.farms) == 1


def test_ini_text_is_read_like_uwsgi() -> None:
    text = (
        "; comment\n# comment\n[uwsgi]\nmaster = true\n  mule   =  \nflag\nkey = a = b ; not a comment\r\n"
        "env = P=100%%\n[other]\nmule = no.py\n[uwsgi]\nmule = again.py\n[ uwsgi ]\nmule = not-this.py\n"
    )
    assert read_ini_text(text) == [
        ("master", "true"), ("mule", ""), ("flag", ""), ("key", "a = b ; not a comment"),
        ("env", "P=100%"), ("mule", "again.py"),
    ]
    assert read_ini_text(text, "other") == [("mule", "no.py")]


def test_magic_variables_use_the_file_path(tmp_path: Path) -> None:
    path = tmp_path / "site.ini"
    path.write_text("[uwsgi]\nmule = %dworker.py\nfarm = %n:1\nenv = X=%e|%s|%c|%z|%%\n")
    options = options_from_ini(str(path))
    real = os.path.realpath(tmp_path)
    assert options == [
        ("mule", f"{real}/worker.py"), ("farm", "site:1"), ("env", f"X=ini|site.ini|{os.path.basename(real)}||%"),
    ]
    assert options_from_ini_text("mule = %dx.py\n[uwsgi]\nmule = %dx.py") == [("mule", "x.py")]


def test_nested_ini_files_are_inlined_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.ini").write_text("[uwsgi]\nmule = a.py\n[extra]\nfarm = e:1\n")
    (tmp_path / "conf" / "app.ini").write_text(
        "[uwsgi]\nmule =\ninclude = conf/base.ini\nini = :extra\nini = conf/base.ini:extra\n"
    )
    options = options_from_ini("conf/app.ini", cwd=str(tmp_path))
    assert options == [("mule", ""), ("mule", "a.py"), ("farm", "e:1"), ("farm", "e:1")]
    (tmp_path / "loop.ini").write_text("[uwsgi]\nini = loop.ini\n")
    with pytest.raises(TopologyError, match="levels deep"):
        options_from_ini("loop.ini", cwd=str(tmp_path))
    (tmp_path / "other.ini").write_text("[uwsgi]\nyaml = x.yml\n")
    with pytest.raises(TopologyError, match="only INI files"):
        options_from_ini("other.ini", cwd=str(tmp_path))


# -- command line --------------------------------------------------------------------------


def test_argv_options_like_getopt() -> None:
    argv = ["uwsgi", "--master", "--mule", "--mule=a.py", "--mules", "2", "--farm", "f:1,3",
            "--mule-msg-size=4096", "-Mp4", "-s", ":3031", "--processes", "-1", "--mule-msg-size", "--env", "A=B"]
    assert options_from_argv(argv) == [
        ("master", None), ("mule", None), ("mule", "a.py"), ("mules", "2"), ("farm", "f:1,3"),
        ("mule-msg-size", "4096"), ("master", None), ("processes", "4"), ("socket", ":3031"),
        ("processes", "-1"), ("mule-msg-size", None), ("env", "A=B"),
    ]
    topology = Topology.from_options(options_from_argv(argv))
    assert [m.kind for m in topology.mules] == ["signal", "script", "signal", "signal"]
    assert topology.farms[0].mules == (1, 3)


def test_a_word_after_mule_is_a_config_file_not_its_program() -> None:
    with pytest.raises(TopologyError, match="--mule=foo.py"):
        options_from_argv(["uwsgi", "--mule", "foo.py"])


def test_config_words_load_after_all_options(tmp_path: Path) -> None:
    ini = tmp_path / "a.ini"
    ini.write_text("[uwsgi]\nmule =\nfarm = a:1,2\n[other]\nmule = x.py\n")
    argv = ["uwsgi", "a.ini", "--mule=y.py", "--ini", str(ini), "--ini", f"{ini}:other", "--", "a.ini:other"]
    options = options_from_argv(argv, cwd=str(tmp_path))
    assert [v for k, v in options if k == "mule"] == ["y.py", "", "x.py", "", "x.py"]


@pytest.mark.parametrize(
    "prefix",
    [["uwsgi"], ["/venv/bin/python3", "/venv/bin/uwsgi"], ["python", "-m", "pyuwsgi"], ["python3", "-u", "-c", "code"]],
)
def test_program_words_are_skipped(prefix: list[str]) -> None:
    assert options_from_argv([*prefix, "--mules", "2"]) == [("mules", "2")]


def test_environ_gives_uwsgi_variables_and_references() -> None:
    environ = {"UWSGI_MULES": "1", "UWSGI_RELOADS": "3", "HOME": "/h", TOPOLOGY_ENV: "{}"}
    options = options_from_argv(["uwsgi", "--env", "A=$(HOME)$(NOPE)", "--mule"], environ=environ)
    assert options == [("mules", "1"), ("env", "A=/h$(NOPE)"), ("mule", None)]
    assert options_from_argv(["uwsgi", "--env", "A=$(HOME)"]) == [("env", "A=$(HOME)")]


@pytest.mark.parametrize("word", ["app.yml", "app.xml", "http://host/app.ini"])
def test_unreadable_configs_are_reported(word: str) -> None:
    with pytest.raises(TopologyError, match="only INI files"):
        options_from_argv(["uwsgi", word])


# -- uwsgiconf ---------------------------------------------------------------------------------


UWSGICONF_CASES = [
    {"mules": 3},
    {"mules": ["a.py", "pkg.mod:run", ""]},  # True: uwsgiconf renders "mule = True" (see the real test)
    {"farms": [("a", 2), ("b", [3, 1])]},
    {"mules": 4, "farms": [("a", 2), ("b", 2)], "msg_buffer": 4096},
    {"mules": ["a.py", "b.py"], "farms": [("x", [2]), ("y", 1)], "touch_reload": "t", "harakiri_timeout": 5},
]


@pytest.mark.parametrize("case", UWSGICONF_CASES)
def test_same_layout_as_uwsgiconf(case: dict[str, object]) -> None:
    uwsgiconf = pytest.importorskip("uwsgiconf.config", reason="uwsgiconf is not installed here (tox env uwsgi has it)")
    ours, theirs = Section(), uwsgiconf.Section()
    for section in (ours, theirs):
        kwargs = dict(case)
        if "farms" in kwargs:
            farm = section.workers.mule_farm
            kwargs["farms"] = [farm(n, ids) for n, ids in kwargs["farms"]]  # type: ignore[attr-defined]
        section.workers.set_mules_params(**kwargs)
    their_options = read_ini_text(theirs.as_configuration().format())
    assert Topology.from_options(their_options) == ours.topology()
    our_options = read_ini_text(ours.as_ini())
    for key in ("touch-mules-reload", "mule-harakiri"):
        assert [o for o in our_options if o[0] == key] == [o for o in their_options if o[0] == key]


def test_section_renders_backlog_dir_and_task_modules(tmp_path) -> None:
    from uwsgi_mules.config import Section
    from uwsgi_mules.errors import TopologyError

    section = Section()
    section.set_backlog_dir(tmp_path / "backlog").set_task_modules("myapp.tasks", "other.tasks")
    ini = section.as_ini()
    assert f"env = UWSGIMULES_BACKLOG_DIR={tmp_path / 'backlog'}" in ini
    assert "env = UWSGIMULES_TASK_MODULES=myapp.tasks,other.tasks" in ini
    import pytest

    with pytest.raises(TopologyError):
        section.set_task_modules("not a module")
