"""Old import paths of modules that moved into packages keep working.

``import uwsgi_mules.dropin`` (documented), ``uwsgi_mules.topology`` and the
others below import the module at its new place and register the very same
module object under the old name: one module, two names, nothing copied.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

#: old dotted path -> new dotted path (submodules of a moved package follow it)
MOVED = {
    "uwsgi_mules.caches": "uwsgi_mules.layout.caches",
    "uwsgi_mules.delivery": "uwsgi_mules.mule.delivery",
    "uwsgi_mules.dropin": "uwsgi_mules.testing.dropin",
    "uwsgi_mules.msgpipe": "uwsgi_mules.layout.msgpipe",
    "uwsgi_mules.pytest_plugin": "uwsgi_mules.testing.pytest_plugin",
    "uwsgi_mules.runtime.dispatch": "uwsgi_mules.mule.dispatch",
    "uwsgi_mules.stats_address": "uwsgi_mules.cli.stats_address",
    "uwsgi_mules.stats_view": "uwsgi_mules.cli.stats_view",
    "uwsgi_mules.topology": "uwsgi_mules.layout.topology",
    "uwsgi_mules.uwsgi_args": "uwsgi_mules.layout.uwsgi_args",
}


def new_name(old: str) -> str | None:
    """Where the module ``old`` lives now, or None if it did not move."""
    for before, after in MOVED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before):]
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and hands back the module imported under its new name."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if not fullname.startswith("uwsgi_mules.") or new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(new_name(spec.name))  # type: ignore[arg-type]
        spec.loader_state = module.__spec__  # importlib sets the alias spec on it: put it back after
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module ran under its new name already: give it back its own spec."""
        alias_spec = module.__spec__
        if alias_spec is not None and alias_spec.loader_state is not None:
            module.__spec__ = alias_spec.loader_state


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (once): before the path
    finder, which would load a moved package's submodule a second time."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
