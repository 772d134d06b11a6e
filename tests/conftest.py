"""Test-suite wide options.

Real-uWSGI tests are skipped when this environment did not install uWSGI
(see :func:`tests.support.server.uwsgi_command`: never a command from
``PATH``), unless ``UWSGIMULES_REQUIRE_REAL=1`` (set by the tox environments
that install uWSGI): then a missing uWSGI fails the run instead.

Every test that needs a real uWSGI carries the ``real`` mark, so that
``-m real`` selects exactly them (the tox env ``pyuwsgi`` runs only those:
the others do not depend on the server and run in ``unit`` and ``uwsgi``).
Tests that use a real-uWSGI fixture or the ``real`` contract harness get
the mark here; a test that starts uWSGI without it fails, instead of being
left out of ``-m real``.

Likewise the ``plugin`` mark: the real-server tests whose server loads the C
plugin when the env built one (``UWSGIMULES_TEST_PLUGIN``, tox env
``plugin``, which runs ``-m plugin``): the real contract harness, tests
using the ``plugin_so`` fixture, and the modules that read
:func:`tests.support.server.plugin_path` (marked there).
A test that reads it without the mark fails.

Every test ends with the module state of uwsgi-mules reset.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from tests.support import server
from uwsgi_mules.testing import reset_state

#: fixtures that start or need a real uWSGI: a test using one is a real test
REAL_FIXTURES = frozenset({"real_uwsgi", "plugin_so", "real_harness"})
#: the parameter value that selects the real backend of a harness fixture
REAL_PARAM = "real"
MARKS = ("plugin: a real-server test whose server loads the C plugin when UWSGIMULES_TEST_PLUGIN names one",)


def pytest_configure(config: pytest.Config) -> None:
    for mark in MARKS:
        config.addinivalue_line("markers", mark)


@pytest.fixture(autouse=True)
def _fresh_module_state() -> Iterator[None]:
    """Settings, result settings, routes and backends a test set never reach the next one."""
    yield
    reset_state()


def require_real_uwsgi() -> str:
    """Return the uwsgi flavour, or skip / fail as configured."""
    flavour = server.uwsgi_flavour()
    if flavour is None:
        if os.environ.get("UWSGIMULES_REQUIRE_REAL") == "1":
            pytest.fail("UWSGIMULES_REQUIRE_REAL=1 but this environment did not install uwsgi or pyuwsgi")
        pytest.skip("this environment did not install uWSGI (the uwsgi or pyuwsgi package); real-server test")
    return flavour


@pytest.fixture
def real_uwsgi() -> str:
    """Skip (or fail under UWSGIMULES_REQUIRE_REAL=1) without a uwsgi command."""
    return require_real_uwsgi()


def needs_real_uwsgi(item: pytest.Item) -> bool:
    """True when ``item`` is marked ``real``, uses a real-uWSGI fixture or
    runs on the real harness."""
    if item.get_closest_marker("real") is not None:
        return True
    if REAL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    return on_real_harness(item)


def on_real_harness(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("harness") == REAL_PARAM


def loads_the_plugin(item: pytest.Item) -> bool:
    return "plugin_so" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("real") is None and needs_real_uwsgi(item):
            item.add_marker(pytest.mark.real)
        if item.get_closest_marker("plugin") is None and (on_real_harness(item) or loads_the_plugin(item)):
            item.add_marker(pytest.mark.plugin)


@pytest.fixture(autouse=True)
def _marks_match_what_tests_use(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test without the ``real`` mark may not look for uWSGI, one without
    ``plugin`` not for the C plugin (``-m real``/``-m plugin`` would miss it)."""
    node = request.node
    with contextlib.ExitStack() as stack:
        if node.get_closest_marker("real") is None:
            stack.enter_context(server.refuse_uwsgi(f"{node.nodeid} needs a real uWSGI: mark it real"))
        if node.get_closest_marker("plugin") is None:
            stack.enter_context(server.refuse_plugin(f"{node.nodeid} reads the C plugin's path: mark it plugin"))
        yield


def pytest_report_header(config: pytest.Config) -> str:
    return f"uwsgi command: {server.uwsgi_command() or 'none'} ({server.uwsgi_flavour() or 'no real uWSGI'})"
