"""Django's own tests of its task framework (``tests/tasks`` of the Django
release installed, vendored under tests/django/upstream/) run against
``MulesBackend`` in ``LOCAL_MODE = "inline"``, with only the backend
setting changed: every ``"django.tasks.backends.immediate.ImmediateBackend"``
in their ``TASKS`` reads ``"uwsgi_mules.contrib.django.tasks.MulesBackend"``.

``test_immediate_backend.py`` and ``test_tasks.py`` run; the tests that do
not apply to MulesBackend are skipped, each with its reason (:data:`SKIPS`).
``test_dummy_backend.py`` and ``test_custom_backend.py`` test Django's
DummyBackend and user-written backends, not a backend setting: not run.
"""

from __future__ import annotations

import sys
import types
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django", reason="the Django integration tests need Django installed")

UPSTREAM = Path(__file__).resolve().parent / "upstream"
VENDORED = {(6, 0): "django60", (6, 1): "django61"}
if django.VERSION[:2] not in VENDORED:
    pytest.skip(f"Django's tests/tasks is vendored for Django {sorted(VENDORED)}, not {django.get_version()}",
                allow_module_level=True)

from tests.django.site_setup import setup_django  # noqa: E402

setup_django()

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.contrib.django import local  # noqa: E402

IMMEDIATE = "django.tasks.backends.immediate.ImmediateBackend"
MULES = "uwsgi_mules.contrib.django.tasks.MulesBackend"
PACKAGE = f"tests.django.upstream.{VENDORED[django.VERSION[:2]]}.tasks"

_CLASS = "asserts the backend's class is ImmediateBackend"
_RESULTS = "asserts that the backend cannot read results back; MulesBackend can (supports_get_result)"
#: (class, test) -> why it does not apply to MulesBackend
SKIPS = {
    ("ImmediateBackendTestCase", "test_using_correct_backend"): _CLASS,
    ("ImmediateBackendTestCase", "test_cannot_get_result"): _RESULTS,
    ("ImmediateBackendTestCase", "test_cannot_refresh_result"): _RESULTS,
    ("ImmediateBackendTestCase", "test_cannot_pass_run_after"):
        "asserts that run_after is refused; MulesBackend runs it at that time (supports_defer)",
    ("TaskTestCase", "test_get_backend"): _CLASS,
    ("TaskTestCase", "test_module_path"):
        "asserts the path 'tasks.tasks.noop_task' of Django's own test layout; the file is vendored under "
        "another package here (not a backend matter)",
}


def _load(name: str) -> types.ModuleType:
    """Django's test module ``name`` with the backend setting changed."""
    path = UPSTREAM / PACKAGE.split(".")[-2] / "tasks" / f"{name}.py"
    source = path.read_text(encoding="utf-8").replace(IMMEDIATE, MULES)
    module = types.ModuleType(f"{PACKAGE}.{name}")
    module.__file__ = str(path)
    module.__package__ = PACKAGE
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - Django's own test file
    return module


def _with_skips(cls: type[unittest.TestCase]) -> type[unittest.TestCase]:
    for (class_name, test), reason in SKIPS.items():
        if class_name == cls.__name__:
            setattr(cls, test, unittest.skip(reason)(getattr(cls, test)))
    return cls


_immediate = _load("test_immediate_backend")
_tasks = _load("test_tasks")
ImmediateBackendTestCase = _with_skips(_immediate.ImmediateBackendTestCase)
ImmediateBackendTransactionTestCase = _with_skips(_immediate.ImmediateBackendTransactionTestCase)
TaskTestCase = _with_skips(_tasks.TaskTestCase)


@pytest.fixture(scope="module", autouse=True)
def _test_database(_plain_test_database: None) -> None:
    """The session's test database exists before Django's test classes touch
    a connection: otherwise this process's connection stays on a private
    ``:memory:`` database that the test database settings no longer name,
    and mule threads of later tests find none of its tables."""


@pytest.fixture(autouse=True)
def _inline_mules() -> Iterator[Any]:
    """``LOCAL_MODE = "inline"``: the tasks run in the enqueuing thread, as the mule that takes them."""
    reset_backends()
    local._local = None
    with override_settings(UWSGI_MULES={**settings.UWSGI_MULES, "LOCAL_MODE": "inline"}):
        yield local.ensure_local_backend()
    local._local = None
    reset_backends()
