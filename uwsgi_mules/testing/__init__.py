"""Test tooling: the pytest plugin, the drop-in ``uwsgi`` module and one reset.

- :mod:`.pytest_plugin`: the ``uwsgi_fake`` and ``uwsgi_dropin`` fixtures
  (registered through the ``pytest11`` entry point);
- :mod:`.dropin`: the fake installed as importable ``uwsgi`` and
  ``uwsgidecorators`` modules;
- :func:`reset_state`: one reset for every piece of module state, called
  around each test, so settings, routes and backends set by one test never
  leak into the next.
"""

from __future__ import annotations

from .reset import reset_state

__all__ = ["reset_state"]
