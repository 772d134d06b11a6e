"""pyuwsgi installed in a virtualenv survives a graceful reload when the
section names the virtualenv's interpreter (``Section.set_pyuwsgi_interpreter``,
rendered as ``binary-path``).

uWSGI re-executes its binary path at a reload; under pyuwsgi that is
``/proc/self/exe``, the base interpreter the virtualenv's ``python`` links
to, which has no ``pyuwsgi``. These tests run pyuwsgi as a user's virtualenv
does (the tox env ``pyuwsgi``, with nothing added to ``PYTHONPATH``), queue
250 offloads, reload, and count every task by id.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.real.test_reload_delivery import APP, SERVE, count, report, send, wait_for
from tests.support.server import UwsgiServer
from uwsgi_mules.config import Section

pytestmark = pytest.mark.real

TOTAL = 250


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    if require_real_uwsgi() != "pyuwsgi":
        pytest.skip("needs pyuwsgi (tox -e pyuwsgi): the uwsgi binary re-executes itself at a reload")
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs pyuwsgi installed in a virtualenv (tox -e pyuwsgi)")
    yield tmp_path


def pyuwsgi_server(workdir: Path, touch: Path, *, keep_virtualenv: bool) -> UwsgiServer:
    section = Section(master=False)  # UwsgiServer passes --master
    section.set_option("module", APP)
    section.set_option("processes", 2)
    section.set_option("mule-reload-mercy", 20)
    section.set_option("touch-reload", str(touch))
    section.workers.set_mules_params([SERVE])
    if keep_virtualenv:
        section.set_pyuwsgi_interpreter()
    ini = section.write_ini(workdir / "site.ini")
    return UwsgiServer(
        workdir, ini=ini, env={"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime")}, venv_site_on_path=False
    )


def reload(server: UwsgiServer, touch: Path, event: str) -> None:
    if event == "touch-reload":
        time.sleep(1.1)  # mtime resolution of the touch check
        os.utime(touch, None)
    else:
        os.kill(server.process.pid, signal.SIGHUP)  # type: ignore[union-attr]


def test_without_the_interpreter_a_reload_loses_the_instance(workdir: Path) -> None:
    """What the option is for: uWSGI re-executes the base interpreter, which
    has no pyuwsgi, and the instance is gone (measured, so the README's
    claim stays true)."""
    touch = workdir / "touch.me"
    touch.write_text("0")
    server = pyuwsgi_server(workdir, touch, keep_virtualenv=False)
    with server:
        assert "binary-path" not in (workdir / "site.ini").read_text()
        reload(server, touch, "touch-reload")
        assert server.process is not None
        server.process.wait(60)
        log = server.log_text()
    assert f"running {os.path.realpath(sys.executable)}" in log, log[-3000:]
    assert "No module named 'pyuwsgi'" in log, log[-3000:]


def test_without_the_interpreter_the_start_names_the_line_to_add(workdir: Path) -> None:
    """Before any reload: one log line at start says the instance will not
    survive one, with the exact option to add."""
    touch = workdir / "touch.me"
    touch.write_text("0")
    with pyuwsgi_server(workdir, touch, keep_virtualenv=False) as server:
        assert send(server, 3) == 3
        wait_for(lambda: len(count(workdir)) >= 3, 30)
        log = server.log_text()
    lines = [line for line in log.splitlines() if "without binary-path" in line]
    print(f"\n{lines}")
    assert len(lines) == 1, log[-3000:]
    assert f"binary-path = {sys.executable}" in lines[0] and "reload" in lines[0]


@pytest.mark.parametrize("event", ["touch-reload", "SIGHUP"])
def test_a_reload_keeps_the_virtualenv_and_every_queued_offload(workdir: Path, event: str) -> None:
    touch = workdir / "touch.me"
    touch.write_text("0")
    server = pyuwsgi_server(workdir, touch, keep_virtualenv=True)
    assert f"binary-path = {sys.executable}\n" in (workdir / "site.ini").read_text()
    with server:
        master = server.process.pid  # type: ignore[union-attr]
        sent = send(server, TOTAL)
        assert sent == TOTAL
        wait_for(lambda: sum(count(workdir).values()) >= 5, 10)
        reload(server, touch, event)
        wait_for(lambda: len(count(workdir)) >= TOTAL, 90)
        # the reloaded instance answers and runs new offloads
        after = wait_for(lambda: "gracefully (RE)spawned uWSGI master process" in server.log_text(), 30)
        sent += send(server, 5, start=TOTAL, ms=1)
        wait_for(lambda: len(count(workdir)) >= TOTAL + 5, 30)
        time.sleep(0.5)  # a duplicate would show up here
        done = count(workdir)
        lost, duplicated = report(f"pyuwsgi {event} with {TOTAL} tasks of 20 ms queued", sent, done,
                                  range(TOTAL + 5))
        log = server.log_text()
        assert server.process is not None and server.process.poll() is None, log[-3000:]
        assert server.process.pid == master
    assert after, log[-3000:]
    assert f"running {sys.executable}\n" in log, log[-3000:]
    assert "No module named" not in log, log[-3000:]
    assert "without binary-path" not in log, "no warning when binary-path is set"
    assert "saved" in log, log[-3000:]
    assert not lost, f"lost {lost[:20]}\n{log[-4000:]}"
    assert not duplicated, f"duplicated {duplicated[:20]}"
