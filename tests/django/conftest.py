"""Fixtures of the Django tests.

Django test modules start with ``pytest.importorskip("django")`` and
:func:`tests.django.site_setup.setup_django`; this conftest imports Django
only inside fixtures, so the rest of the suite runs without Django.
The database fixture uses pytest-django's ``transactional_db`` when that
plugin is installed, else creates the test database itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With pytest-django, tests using ``site_db`` get its ``django_db`` mark
    (it only creates test databases that marked tests ask for)."""
    if not config.pluginmanager.hasplugin("django"):
        return
    for item in items:
        if "site_db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="session")
def _plain_test_database() -> Iterator[None]:
    from django.db import connections
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases, teardown_test_environment

    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
    try:
        yield
    finally:
        for connection in connections.all(initialized_only=True):
            connection.close()
        teardown_databases(old, verbosity=0)
        teardown_test_environment()


@pytest.fixture
def site_db(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test database in autocommit mode (transactions really commit, so
    ``on_commit`` callbacks run); emptied after the test."""
    if request.config.pluginmanager.hasplugin("django"):
        yield  # the django_db(transaction=True) mark set up the database
        return
    request.getfixturevalue("_plain_test_database")
    from django.core.management import call_command

    try:
        yield
    finally:
        call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def uwsgi_fake_options() -> dict[str, Any]:
    """The fake gets the layout of settings.UWSGI_MULES (2 Django mules, farm "notes")."""
    from uwsgi_mules.contrib.django.ini import fake_options

    return fake_options()
