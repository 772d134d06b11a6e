"""The runtime directory on real uWSGI: a refused directory does not
crash-loop the mule, and the default location is the one the plugin uses.

The tox ``plugin`` env reruns these with the C plugin loaded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.real.test_reload_delivery import count, make_server, send, wait_for

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def test_a_refused_runtime_directory_is_logged_once_and_the_mule_waits_for_it(workdir: Path) -> None:
    runtime = workdir / "runtime"
    runtime.mkdir()
    runtime.chmod(0o775)  # pre-created, writable by the group
    server = make_server(workdir)
    with server:
        assert wait_for(lambda: "cannot start" in server.log_text(), 20), server.log_text()[-3000:]
        time.sleep(6)  # longer than one retry: the same reason is not logged again, the mule is not respawned
        log = server.log_text()
        runtime.chmod(0o700)  # fixed: the mule starts at its next attempt
        assert wait_for(lambda: "serving offloads" in server.log_text(), 20), server.log_text()[-3000:]
        assert send(server, 20, ms=1) == 20
        assert wait_for(lambda: len(count(workdir)) >= 20, 30), server.log_text()[-3000:]
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    errors = [line for line in log.splitlines() if "cannot start" in line]
    print(f"\nrefused runtime directory: {len(errors)} error line(s) while refused; then 20 sent, "
          f"{sum(count(workdir).values())} executed")
    assert len(errors) == 1, errors
    assert f"{runtime} is open to other users (mode 0o775)" in errors[0]
    assert "chmod 700" in errors[0]
    assert "Traceback" not in log and log.count("spawned uWSGI mule 1") == 1, log[-3000:]
    assert sorted(count(workdir)) == list(range(20)) and max(count(workdir).values()) == 1
    assert stopped_in < 15, "the mule stops as usual"


def test_the_default_runtime_directory_follows_xdg_runtime_dir(workdir: Path) -> None:
    xdg = workdir / "xdg"
    xdg.mkdir(mode=0o700)
    server = make_server(workdir, env={"UWSGIMULES_RUNTIME_DIR": "", "XDG_RUNTIME_DIR": str(xdg)})
    with server:
        assert send(server, 3, ms=1) == 3
        assert wait_for(lambda: len(count(workdir)) >= 3, 30), server.log_text()[-3000:]
        base = xdg / "uwsgi-mules"
        instances = list(base.iterdir())
        assert [p.name.split("-")[0] for p in instances] == [str(server.process.pid)]  # type: ignore[union-attr]
        for level in (base, instances[0]):
            assert level.stat().st_mode & 0o777 == 0o700
        assert (instances[0] / "key").stat().st_mode & 0o777 == 0o600
    assert not (workdir / "runtime").exists()
    assert os.environ.get("XDG_RUNTIME_DIR") != str(xdg)
