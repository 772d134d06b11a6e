"""Rendered configs boot under real uWSGI 2.0 with --strict."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from examples import render_inis
from tests.support.server import REPO_ROOT, UwsgiServer, free_port
from uwsgi_mules.config import Section
from uwsgi_mules.config.options import KNOWN_OPTIONS
from uwsgi_mules.topology import ENTRY_POINT, Topology
from uwsgi_mules.uwsgi_args import options_from_argv

pytestmark = pytest.mark.real


def _layout_from_log(log: str) -> tuple[int, list[str]]:
    mules = len(set(re.findall(r"spawned uWSGI mule (\d+) ", log)))
    farms = re.findall(r"created farm \d+ name: (\S+) mules:(\S+)", log)
    return mules, [f"{name}:{ids}" for name, ids in farms]


def _wait_done(path: Path, count: int, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln]
            if len(lines) >= count:
                time.sleep(0.3)
                return [json.loads(ln) for ln in path.read_text().splitlines() if ln]
        time.sleep(0.05)
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("name", sorted(render_inis.EXAMPLES))
def test_example_ini_boots_and_serves(real_uwsgi: str, name: str, tmp_path: Path) -> None:
    port = free_port()
    text = (render_inis.INI_DIR / name).read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    ini = tmp_path / name
    ini.write_text(text)
    server = UwsgiServer(tmp_path, ["--ini", str(ini)], http=False, cwd=REPO_ROOT, env={"EXAMPLE_OUTPUT_DIR": str(tmp_path)})
    server.port = port
    with server:
        topology = Section.from_ini(ini).topology()
        server.wait_for_log(f"spawned uWSGI mule {topology.mule_count} ")
        assert _layout_from_log(server.log_text()) == (
            topology.mule_count, [f.option_value() for f in topology.farms]
        )
        assert server.get("/offload?n=2") == b"queued 6 tasks\n"
        done = _wait_done(tmp_path / "done.jsonl", 6)
    assert sorted((d["task"], d["mule"] in (1, 2) if d["task"] == "build_report" else d["mule"]) for d in done) == [
        ("build_report", True), ("build_report", True), ("resize_image", 1), ("resize_image", 1),
        ("send_email", 3), ("send_email", 3),
    ]


def test_every_option_the_api_renders_is_accepted_with_strict(real_uwsgi: str, tmp_path: Path) -> None:
    section = Section()
    section.workers.set_basic_params(count=1, threads=2, enable_threads=True, lazy_apps=False)
    section.main_process.set_basic_params(die_on_term=True, chdir=str(REPO_ROOT), strict=True, vacuum=True)
    section.python.set_basic_params(search_path=str(REPO_ROOT), import_modules="json", shared_import="os")
    section.python.set_wsgi_params(module="examples.simple_app.wsgi:application")
    section.networking.register_socket(str(tmp_path / "app.sock"))
    section.monitoring.set_stats_params(str(tmp_path / "stats.sock"))
    section.monitoring.set_metrics_params(enable=True, store_dir=str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "spool").mkdir()
    for key, value in [("locks", 2), ("spooler", str(tmp_path / "spool")), ("spooler-frequency", 1),
                       ("disable-logging", True), ("need-app", True), ("worker-reload-mercy", 5),
                       ("reload-mercy", 5), ("py-call-osafterfork", True)]:
        section.set_option(key, value)
    section.set_env("MY_SETTING", "1")
    touch = tmp_path / "touch"
    touch.write_text("")
    section.workers.set_mules_params(
        [ENTRY_POINT, None], farms=[section.workers.mule_farm("f", [1, 2])], touch_reload=str(touch),
        harakiri_timeout=30, reload_mercy=5, msg_buffer=65536, msg_buffer_recv=65536,
    )
    rendered = {key for key, _ in section.items()}
    covered_below = {"wsgi-file", "http-socket", "mules", "lazy-apps"}
    assert rendered == KNOWN_OPTIONS - covered_below - {"plugin"}, "render every known option"
    ini = section.write_ini(tmp_path / "all.ini")
    with UwsgiServer(tmp_path, ["--ini", str(ini)], http=False) as server:
        server.wait_for_log("spawned uWSGI mule 2 ")
        assert "unknown config directive" not in server.log_text()
    # the ones left out above, on their own ("plugin" is booted by the plugin tests)
    extra = Section()
    extra.python.set_wsgi_params(wsgi_file=str(REPO_ROOT / "examples" / "simple_app" / "wsgi.py"))
    extra.workers.set_basic_params(lazy_apps=True)
    extra.networking.register_socket(f"127.0.0.1:{free_port()}", http=True)
    extra.workers.set_mules_params(1)
    assert covered_below <= {key for key, _ in extra.items()}
    extra_ini = extra.write_ini(tmp_path / "extra.ini")
    with UwsgiServer(tmp_path / "extra", ["--ini", str(extra_ini)], http=False) as server:
        server.wait_for_log("spawned uWSGI mule 1 ")


def test_argv_parser_agrees_with_real_uwsgi(real_uwsgi: str, tmp_path: Path) -> None:
    ini = tmp_path / "more.ini"
    ini.write_text("[uwsgi]\nmule =\nfarm = fromini:3,4\n")
    args = ["--module", "examples.simple_app.wsgi:application", "--mule", "--mules", "2",
            "--mule=uwsgi_mules.mule:run", "--ini", str(ini), "--farm", "a:1,2"]
    with UwsgiServer(tmp_path, args) as server:
        server.wait_for_log("spawned uWSGI mule 5 ")
        mules, farms = _layout_from_log(server.log_text())
        parsed = Topology.from_options(options_from_argv(server.command()))
    assert (parsed.mule_count, [f.option_value() for f in parsed.farms]) == (mules, farms)
    assert mules == 5 and farms == ["fromini:3,4", "a:1,2"]
