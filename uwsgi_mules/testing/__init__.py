"""Test tooling: one reset for every piece of module state.

The pytest plugin's fixtures and the project's own test suite call
:func:`reset_state` around each test, so settings, routes and backends set
by one test never leak into the next.
"""

from __future__ import annotations

from .reset import reset_state

__all__ = ["reset_state"]
