"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

* ``uwsgi_fake``: an active :class:`~uwsgi_mules.fake.FakeUwsgi`. Its layout
  comes from the ``uwsgi_fake_options`` fixture (override it in a
  ``conftest.py`` or a test module), by default 3 signal-only mules and no
  farms. Every piece of module state (settings, result settings, routes,
  backends: :func:`uwsgi_mules.testing.reset_state`) is reset around each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..fake import FakeUwsgi
from . import reset_state


@pytest.fixture
def uwsgi_fake_options() -> dict[str, Any]:
    """Keyword arguments for the ``uwsgi_fake`` fixture's FakeUwsgi."""
    return {"mules": 3}


@pytest.fixture
def uwsgi_fake(uwsgi_fake_options: dict[str, Any]) -> Iterator[FakeUwsgi]:
    """An active fake uWSGI; offloads queue in it until ``run_pending()``."""
    reset_state()
    fake = FakeUwsgi(**uwsgi_fake_options)
    with fake:
        yield fake
    reset_state()


@pytest.fixture
def uwsgi_dropin(uwsgi_fake_options: dict[str, Any]) -> Iterator[Any]:
    """The fake installed as importable ``uwsgi`` and ``uwsgidecorators``
    modules (for code that does ``import uwsgi`` at module top); yields a
    :class:`~uwsgi_mules.testing.dropin.DropIn` (``.fake``, ``.uwsgi``). Options come
    from ``uwsgi_fake_options``. Removed cleanly after the test."""
    from .dropin import install_dropin

    reset_state()
    dropin = install_dropin(**uwsgi_fake_options)
    try:
        yield dropin
    finally:
        dropin.uninstall()
        reset_state()
