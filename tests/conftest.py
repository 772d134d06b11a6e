"""Test-suite wide options.

Real-uWSGI tests are skipped when this environment has no ``uwsgi``
command, unless ``UWSGIMULES_REQUIRE_REAL=1`` (set by the tox environments
that install uWSGI and by CI): then a missing uWSGI fails the run instead.
Every test ends with the module state of uwsgi-mules reset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import uwsgi_command, uwsgi_flavour
from uwsgi_mules.testing import reset_state


@pytest.fixture(autouse=True)
def _fresh_module_state() -> Iterator[None]:
    """Settings, result settings, routes and backends a test set never reach the next one."""
    yield
    reset_state()


def require_real_uwsgi() -> str:
    """Return the uwsgi flavour, or skip / fail as configured."""
    flavour = uwsgi_flavour()
    if flavour is None:
        if os.environ.get("UWSGIMULES_REQUIRE_REAL") == "1":
            pytest.fail("UWSGIMULES_REQUIRE_REAL=1 but no uwsgi command is installed")
        pytest.skip("no uwsgi command in this environment (install uwsgi or pyuwsgi)")
    return flavour


@pytest.fixture
def real_uwsgi() -> str:
    """Skip (or fail under UWSGIMULES_REQUIRE_REAL=1) without a uwsgi command."""
    return require_real_uwsgi()


def pytest_report_header(config: pytest.Config) -> str:
    return f"uwsgi command: {uwsgi_command() or 'none'} ({uwsgi_flavour() or 'no real uWSGI'})"
