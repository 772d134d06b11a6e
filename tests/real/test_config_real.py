"""Rendered configs boot under real uWSGI 2.0 with --strict, and the option
readers agree with what real uWSGI does."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from examples import render_inis
from tests.support.records import read_jsonl
from tests.support.server import REPO_ROOT, UwsgiServer, free_port
from tests.test_config import every_option_section, other_options_section
from uwsgi_mules import TopologyError
from uwsgi_mules.config import Section, read_ini_text
from uwsgi_mules.layout.topology import ENTRY_POINT, TOPOLOGY_ENV, Topology
from uwsgi_mules.layout.uwsgi_args import options_from_argv

pytestmark = pytest.mark.real


def layout_from_log(log: str) -> tuple[int, list[str]]:
    """(mule count, ["farm:ids", ...]) as real uWSGI reports them."""
    mules = len(set(re.findall(r"spawned uWSGI mule (\d+) ", log)))
    farms = re.findall(r"created farm \d+ name: (\S+) mules:(\S+)", log)
    return mules, [f"{name}:{ids}" for name, ids in farms]


def expected_layout(topology: Topology) -> tuple[int, list[str]]:
    return topology.mule_count, [f.option_value() for f in topology.farms]


def wait_for_lines(path: Path, count: int, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(read_jsonl(path)) >= count:
            time.sleep(0.3)  # anything more that would arrive
            break
        time.sleep(0.05)
    return read_jsonl(path)


# -- the committed examples ----------------------------------------------------------------

EXAMPLE_REQUESTS = {
    "demo.ini": ("/offload?n=2&tasks=resize_image,build_report", 4),
    "django_style.ini": ("/offload?n=2", 6),
    "lazy_apps.ini": ("/offload?n=2", 6),
    "big_messages.ini": ("/offload?n=2", 6),
}


def test_every_example_has_a_request() -> None:
    assert set(EXAMPLE_REQUESTS) == set(render_inis.EXAMPLES)


@pytest.mark.parametrize("name", sorted(render_inis.EXAMPLES))
def test_example_ini_boots_and_serves(real_uwsgi: str, name: str, tmp_path: Path) -> None:
    port = free_port()
    text = (render_inis.INI_DIR / name).read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    ini = tmp_path / name
    ini.write_text(text)
    topology = Section.from_ini(ini).topology()
    path, count = EXAMPLE_REQUESTS[name]
    server = UwsgiServer(tmp_path, ["--ini", str(ini)], http=False, cwd=REPO_ROOT,
                         env={"EXAMPLE_OUTPUT_DIR": str(tmp_path)})
    server.port = port
    with server:
        server.wait_for_log(f"spawned uWSGI mule {topology.mule_count} ")
        server.wait_for_log("spawned uWSGI worker")
        assert layout_from_log(server.log_text()) == expected_layout(topology)
        assert server.get(path) == f"queued {count} tasks\n".encode()
        done = wait_for_lines(tmp_path / "done.jsonl", count)
    ran = sorted((str(d["task"]), int(d["mule"])) for d in done)  # type: ignore[call-overload]
    assert len(ran) == count, ran
    for task, mule in ran:
        allowed = {"resize_image": {1}, "build_report": {1, 2}, "send_email": {3}}[task]
        assert mule in allowed, ran


# -- values reach the processes unchanged ------------------------------------------------

ENV_READER = '''
import ctypes, os
_getenv = ctypes.CDLL(None).getenv
_getenv.restype = ctypes.c_char_p

def read_env():
    """What os.environ and the C environment hold for the two variables."""
    names = ("UWSGIMULES_TOPOLOGY", "PERCENT")
    c_values = {k: (_getenv(k.encode()) or b"").decode() or None for k in names}
    return {"os.environ": {k: os.environ.get(k) for k in names}, "C": c_values}
'''

ENV_APP = '''
import json
from envreader import read_env
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(read_env()).encode()]
'''

PLAIN_APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]
'''

ENV_MULE = '''
import json, os, time, uwsgi
from envreader import read_env
with open(os.path.join(os.environ["MULES_TEST_DIR"], "mule%d.json" % uwsgi.mule_id()), "w") as fh:
    fh.write(json.dumps(read_env()) + "\\n")  # one line: readers wait for its newline
while True:
    time.sleep(60)
'''


@pytest.mark.parametrize("form", ["ini", "args"])
def test_layout_env_reaches_workers_and_mules_unchanged(real_uwsgi: str, form: str, tmp_path: Path) -> None:
    """The JSON layout (and a value with ``%``) arrive byte for byte. Under
    pyuwsgi the interpreter exists before uWSGI applies ``env``, so only the
    C environment has them (the runtime reads it there)."""
    (tmp_path / "envreader.py").write_text(ENV_READER)
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / "envmule.py").write_text(ENV_MULE)
    section = Section()
    section.workers.set_basic_params(count=1)
    section.python.set_wsgi_params(module="envapp:application")
    section.set_env("PERCENT", "50% %d %n %% x:y=z")
    workers = section.workers
    workers.set_mules_params(
        ["envmule.py", None, "envmule.py"],
        farms=[workers.mule_farm("a b", [1, 3]), workers.mule_farm("c", 1)],
        msg_buffer=131072, msg_buffer_recv=100000,
    )
    values = {TOPOLOGY_ENV: section.topology().to_env_value(), "PERCENT": "50% %d %n %% x:y=z"}
    in_os_environ = values if real_uwsgi == "uwsgi" else dict.fromkeys(values)
    expected = {"os.environ": in_os_environ, "C": values}
    args = ["--ini", str(section.write_ini(tmp_path / "env.ini"))] if form == "ini" else section.as_args()
    with UwsgiServer(tmp_path, args, cwd=tmp_path) as server:
        server.wait_for_log("spawned uWSGI mule 3 ")
        assert json.loads(server.get("/")) == expected
        for mule_id in (1, 3):
            result = wait_for_lines(tmp_path / f"mule{mule_id}.json", 1)
            assert result == [expected]
    assert Topology.from_env_value(values[TOPOLOGY_ENV]) == section.topology()


# -- every option the API can emit ------------------------------------------------------------


@pytest.mark.parametrize("form", ["ini", "args"])
def test_every_option_the_api_renders_is_accepted_with_strict(real_uwsgi: str, form: str, tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "touch").write_text("")
    section = every_option_section(tmp_path, REPO_ROOT)
    if real_uwsgi == "uwsgi":  # the compiled binary runs a virtualenv through 'home'
        section.python.set_basic_params(python_home=sys.prefix)
    section.set_option("disable-logging", True)
    args = ["--ini", str(section.write_ini(tmp_path / "all.ini"))] if form == "ini" else section.as_args()
    with UwsgiServer(tmp_path, args, http=False) as server:
        server.wait_for_log("spawned uWSGI mule 2 ")
        assert layout_from_log(server.log_text()) == expected_layout(section.topology())
    port = free_port()
    (tmp_path / "app.py").write_text(PLAIN_APP)
    other = other_options_section(port, tmp_path / "app.py")
    args = ["--ini", str(other.write_ini(tmp_path / "other.ini"))] if form == "ini" else other.as_args()
    server = UwsgiServer(tmp_path / "other", args, http=False, cwd=REPO_ROOT)
    server.port = port
    with server:
        server.wait_for_log("spawned uWSGI mule 1 ")
        server.wait_for_log("spawned uWSGI worker")
        assert server.get("/") == b"plain"


def test_unknown_options_are_refused_by_strict(real_uwsgi: str, tmp_path: Path) -> None:
    """The check above means something: --strict does refuse an unknown option."""
    section = Section()
    section.set_option("no-such-option", 1)
    server = UwsgiServer(tmp_path, ["--ini", str(section.write_ini(tmp_path / "bad.ini"))], http=False)
    try:
        with pytest.raises(RuntimeError, match="unknown config directive: no-such-option"):
            server.start()
    finally:
        server.stop()


# -- the argv reader against real uWSGI -------------------------------------------------------


def test_argv_parser_agrees_with_real_uwsgi(real_uwsgi: str, tmp_path: Path) -> None:
    (tmp_path / "more.ini").write_text("[uwsgi]\nmule =\nfarm = %n:3,4\n[extra]\nfarm = extra:6\n")
    (tmp_path / "last.ini").write_text("[uwsgi]\nmule = uwsgi_mules.mule:run\nfarm = last:6\n")
    args = ["--module", "examples.simple_app.wsgi:application", "last.ini", "--mule", "--mules", "2",
            f"--mule={ENTRY_POINT}", "--ini", "more.ini", "-p", "2", "--farm", "a:1,2", "--ini", ":extra",
            "--env", "MULES_NOTE=--mule"]
    with UwsgiServer(tmp_path, args, env={"PYTHONPATH": str(REPO_ROOT)}) as server:
        server.wait_for_log("spawned uWSGI mule 6 ")
        real = layout_from_log(server.log_text())
        parsed = Topology.from_options(options_from_argv(server.command(), cwd=str(tmp_path)))
    # command-line options first (the --ini files inline), then last.ini
    assert real == (6, ["more:3,4", "a:1,2", "extra:6", "last:6"])
    assert expected_layout(parsed) == real
    assert parsed.mule(6).program == ENTRY_POINT  # type: ignore[union-attr]


def test_a_word_after_mule_is_loaded_as_config_by_real_uwsgi(real_uwsgi: str, tmp_path: Path) -> None:
    (tmp_path / "foo.py").write_text("print('never run')\n")
    args = ["--module", "examples.simple_app.wsgi:application", "--mule", "foo.py"]
    server = UwsgiServer(tmp_path, args, http=False, start_timeout=20)
    try:
        with pytest.raises(RuntimeError, match="unable to load configuration from foo.py"):
            server.start()
    finally:
        server.stop()
    with pytest.raises(TopologyError, match="--mule=foo.py"):
        options_from_argv(server.command())


# -- uwsgiconf ------------------------------------------------------------------------------------

UWSGICONF_CASES = [
    {"mules": ["examples/simple_app/__init__.py", True, ""]},
    {"farms": [("a", 2), ("b", [3, 1])]},
    {"mules": 4, "farms": [("a", 2), ("b", 2)], "msg_buffer": 65536, "harakiri_timeout": 5, "reload_mercy": 3},
]


@pytest.mark.parametrize("case", UWSGICONF_CASES)
def test_uwsgiconf_and_our_config_start_the_same_mules(
    real_uwsgi: str, case: dict[str, object], tmp_path: Path
) -> None:
    uwsgiconf = pytest.importorskip("uwsgiconf.config", reason="uwsgiconf is not installed here (tox env uwsgi has it)")
    logs = []
    for tool in ("uwsgiconf", "ours"):
        section = uwsgiconf.Section() if tool == "uwsgiconf" else Section()
        kwargs = dict(case)
        if "farms" in kwargs:
            farm = section.workers.mule_farm
            kwargs["farms"] = [farm(n, ids) for n, ids in kwargs["farms"]]  # type: ignore[attr-defined]
        section.workers.set_mules_params(**kwargs)
        text = section.as_configuration().format() if tool == "uwsgiconf" else section.as_ini()
        ini = tmp_path / f"{tool}.ini"
        ini.write_text(text)
        with UwsgiServer(tmp_path / tool, ["--ini", str(ini)], cwd=REPO_ROOT) as server:
            mules = len([k for k, v in read_ini_text(text) if k == "mule"]) or int(dict(read_ini_text(text))["mules"])
            server.wait_for_log(f"spawned uWSGI mule {mules} ")
            logs.append(layout_from_log(server.log_text()))
    assert logs[0] == logs[1] == expected_layout(section.topology())  # type: ignore[union-attr]


def test_uwsgiconf_msg_buffer_recv_is_refused_by_strict(real_uwsgi: str, tmp_path: Path) -> None:
    uwsgiconf = pytest.importorskip("uwsgiconf.config", reason="uwsgiconf is not installed here (tox env uwsgi has it)")
    section = uwsgiconf.Section()
    section.workers.set_mules_params(1, msg_buffer_recv=131072)
    ini = tmp_path / "recv.ini"
    ini.write_text(section.as_configuration().format())
    server = UwsgiServer(tmp_path, ["--ini", str(ini)])
    try:
        with pytest.raises(RuntimeError, match="unknown config directive: mule-msg-recv-size"):
            server.start()
    finally:
        server.stop()
    ours = Section()
    ours.workers.set_mules_params(1, msg_buffer_recv=131072)
    with UwsgiServer(tmp_path / "ours", ["--ini", str(ours.write_ini(tmp_path / "ours.ini"))]) as server:
        server.wait_for_log("spawned uWSGI mule 1 ")
