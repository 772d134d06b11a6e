"""The tables uwsgidecorators keeps at module level, resettable for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: functions of ``@spool*`` by name, as in uwsgidecorators
spooler_functions: dict[str, Callable[..., Any]] = {}
#: functions of ``@mulefunc`` by name (informational; dispatch uses module paths)
mule_functions: dict[str, Callable[..., Any]] = {}
#: ``@postfork`` callables (and the loops of ``@mule``, ``@farm``...) in order
postfork_chain: list[Callable[[], Any]] = []


def clear_tables() -> None:
    spooler_functions.clear()
    mule_functions.clear()
    postfork_chain.clear()
