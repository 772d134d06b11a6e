"""Importing the callable a ``"pkg.module:attr"`` mule program names."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def import_program(program: str) -> Callable[[], object]:
    """The callable a ``"pkg.module:attr"`` mule program names."""
    module_name, _, attr = program.partition(":")
    # import_module, not sys.modules.get: a module another thread is still
    # importing is in sys.modules half initialised; import_module waits for it
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    return target
