"""The start warning of pyuwsgi in a virtualenv without binary-path, as a
pure decision (tests/real/test_pyuwsgi_reload.py sees the line on pyuwsgi)."""

from __future__ import annotations

from uwsgi_mules.layout.pyuwsgi_check import binary_path_warning

VENV = dict(prefix="/srv/app/.venv", base_prefix="/usr", executable="/srv/app/.venv/bin/python",
            reexecuted="/usr/bin/python3.11")


def test_the_line_names_the_option_to_add() -> None:
    line = binary_path_warning({}, under_pyuwsgi=True, **VENV)
    assert line is not None and "\n" not in line
    assert line.endswith("binary-path = /srv/app/.venv/bin/python") and "/usr/bin/python3.11" in line


def test_no_line_when_a_reload_keeps_the_virtualenv() -> None:
    assert binary_path_warning({b"binary-path": b"/srv/app/.venv/bin/python"}, under_pyuwsgi=True, **VENV) is None
    assert binary_path_warning({"binary-path": "/x"}, under_pyuwsgi=True, **VENV) is None
    assert binary_path_warning({}, under_pyuwsgi=False, **VENV) is None, "the uwsgi binary re-executes itself"
    assert binary_path_warning({}, under_pyuwsgi=True, **dict(VENV, base_prefix=VENV["prefix"])) is None
