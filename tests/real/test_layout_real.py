"""Layout cases only real uWSGI can show: a layout uwsgi-mules reads wrong,
a farm name uWSGI cuts, the environment of the master."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract import layout_tasks, tasks
from tests.contract.harness import RealHarness
from tests.support.server import UwsgiServer, plugin_path
from uwsgi_mules import UnknownFarm
from uwsgi_mules.layout.topology import TOPOLOGY_ENV, Topology

# the real harness loads the C plugin in the tox env plugin
pytestmark = [pytest.mark.real, pytest.mark.plugin]

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture
def real(real_uwsgi: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealHarness]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("MULES_TEST_DIR", str(workdir))
    harness = RealHarness(workdir)
    try:
        yield harness
    finally:
        harness.stop()


def start(harness: RealHarness, args: list[str], env: dict[str, str] | None = None) -> None:
    args = ["--module", "tests.contract.app:application", "--processes", "1", *args]
    harness.server = UwsgiServer(harness.workdir, args, env=env)
    harness.server.start()


def test_a_wrong_layout_fails_at_once_on_bad_file_descriptor(real: RealHarness) -> None:
    if plugin_path() is not None:
        pytest.skip("the plugin reports the exact layout: no layout can be wrong there")
    # the environment claims 3 mules, the server has 1: uWSGI writes to a descriptor that
    # is not mule 3's queue and says "Bad file descriptor"; waiting for room cannot help
    claimed = Topology.build([SERVE, None, None])
    start(real, [f"--mule={SERVE}"], env={TOPOLOGY_ENV: claimed.to_env_value()})
    real.server.wait_for_log("spawned uWSGI mule 1 ")
    assert real.in_worker(layout_tasks.mule_count) == 3
    outcome = real.in_worker(layout_tasks.timed_send, 3, b"lost?")
    assert outcome["error"] == "UnknownMule" and "bad file descriptor" in outcome["message"]
    assert outcome["seconds"] < 2
    assert real.in_worker(layout_tasks.timed_send, 1, b"fine")["result"] is True


def test_uwsgi_keeps_254_bytes_of_a_farm_name(real: RealHarness) -> None:
    name = "f" * 255
    start(real, [f"--mule={SERVE}", f"--farm={name}:1"])
    real.server.wait_for_log("spawned uWSGI mule 1 ")
    # raw uWSGI: the full name is unknown, the first 254 bytes are the farm
    with pytest.raises(ValueError, match="unknown farm"):
        real.in_worker(tasks.raw_send, b"x", name.encode())
    assert real.in_worker(tasks.raw_send, b"x", name[:254].encode()) is True
    # the typed layer refuses the name before sending
    with pytest.raises(UnknownFarm, match="254 bytes"):
        real.in_worker(tasks.send_to_farm, name, "never")


def test_uwsgi_ini_variable_is_read_like_uwsgi_does(real: RealHarness, tmp_path: Path) -> None:
    ini = tmp_path / "from_env.ini"
    ini.write_text(f"[uwsgi]\nmule = {SERVE}\nmule = {SERVE}\nfarm = pair:1,2\n")
    start(real, [], env={"UWSGI_INI": str(ini), "UWSGI_MULES": "1"})
    real.server.wait_for_log("spawned uWSGI mule 3 ")
    assert real.in_worker(layout_tasks.mule_count) == 3
    assert real.in_worker(tasks.farms) == [("pair", [1, 2])]
