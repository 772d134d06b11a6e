"""A real uwsgiconf ``Section`` runs uwsgi-mules on real uWSGI once
``uwsgi_mules.config.uwsgiconf_compat.prepare`` fixed it (needs uwsgiconf:
tox env ``uwsgi``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import REPO_ROOT, UwsgiServer
from uwsgi_mules.config import uwsgiconf_compat as compat
from uwsgi_mules.layout.topology import ENTRY_POINT

from .test_config_real import expected_layout, layout_from_log
from .test_mule_decorators import call

pytestmark = pytest.mark.real

APP = "tests.real.uwsgiconf_apps.app"


def uwsgiconf_section() -> Any:
    uwsgiconf = pytest.importorskip("uwsgiconf.config", reason="uwsgiconf is not installed here (tox env uwsgi has it)")
    section = uwsgiconf.Section()
    section.workers.set_mules_params(
        mules=[ENTRY_POINT, "", ENTRY_POINT], farms=[section.workers.mule_farm("pair", [2, 3])],
        msg_buffer_recv=131072, harakiri_timeout=30,
    )
    return section


def received(workdir: Path, count: int, timeout: float = 30) -> list[int]:
    path = workdir / "records" / "received.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return sorted(json.loads(ln)["size"] for ln in path.read_text().splitlines()) if path.exists() else []


def test_a_prepared_uwsgiconf_section_boots_and_carries_the_receive_size(real_uwsgi: str, tmp_path: Path) -> None:
    section = uwsgiconf_section()
    assert [f.option for f in compat.check(section)] == ["mule-msg-recv-size"]
    raw = tmp_path / "raw.ini"
    raw.write_text(section.as_configuration().format())
    server = UwsgiServer(tmp_path / "raw", ["--ini", str(raw)])
    try:
        with pytest.raises(RuntimeError, match="unknown config directive: mule-msg-recv-size"):
            server.start()
    finally:
        server.stop()

    assert [(f.option, f.fixed) for f in compat.prepare(section)] == [("mule-msg-recv-size", True)]
    ini = tmp_path / "prepared.ini"
    ini.write_text(section.as_configuration().format())
    workdir = tmp_path / "prepared"
    args = ["--ini", str(ini), "--module", f"{APP}:application", "--enable-threads"]
    with UwsgiServer(workdir, args, cwd=REPO_ROOT) as server:
        server.wait_for_log("spawned uWSGI mule 3 ")
        assert layout_from_log(server.log_text()) == expected_layout(compat.layout_of(section))
        # 100,000 bytes fit the 131,072-byte receive size the layout line carries
        # (the default of 65,536 would refuse them with MessageTooLarge)
        assert call(server, f"{APP}:send", [100_000, 10, 140_000]) == [True, True, "MessageTooLarge"]
        assert received(workdir, 2) == [10, 100_000]
