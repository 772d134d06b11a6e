"""Install the fake as importable ``uwsgi`` and ``uwsgidecorators`` modules.

Legacy code that does ``import uwsgi`` / ``from uwsgidecorators import
timer`` at module top can then be imported and tested without uWSGI:

>>> from uwsgi_mules.testing.dropin import install_dropin
>>> with install_dropin(mules=2, locks=1) as dropin:
...     import legacy_app                      # sees the fake as ``uwsgi``
...     dropin.fake.advance(60)                # fire its timers
...     dropin.fake.run_spooler()

Uninstalling restores whatever ``uwsgi`` / ``uwsgidecorators`` modules
existed before, deactivates the fake and (by default) forgets the modules
imported meanwhile that hold references to the fake (so a later test
imports them afresh). The pytest fixture is ``uwsgi_dropin``.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import TYPE_CHECKING, Any

from ..backends.selection import FAKE_MODULE_MARKER
from ..fake import FakeUwsgi
from ..fake.spooler import SPOOL_IGNORE, SPOOL_OK, SPOOL_RETRY

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

#: functions of the fake module that map 1:1 to FakeUwsgi methods
_DIRECT = (
    "mule_id", "worker_id", "in_farm", "mule_msg", "farm_msg", "mule_get_msg", "farm_get_msg",
    "register_signal", "signal", "signal_registered", "signal_wait", "signal_received",
    "add_timer", "add_rb_timer", "add_cron", "add_file_monitor", "lock", "unlock", "is_locked",
    "spool", "set_user_harakiri", "register_rpc", "log",
)


class FakeUwsgiModule(types.ModuleType):
    """A module that looks like uWSGI's embedded ``uwsgi``, backed by a fake.

    ``uwsgi.spooler``, ``uwsgi.mule_msg_hook`` and ``uwsgi.post_fork_hook``
    are properties that read and write the fake's hooks.
    """

    def __init__(self, fake: FakeUwsgi) -> None:
        super().__init__("uwsgi", "uWSGI's embedded module, played by uwsgi_mules.fake.FakeUwsgi")
        object.__setattr__(self, FAKE_MODULE_MARKER, fake)
        for name in _DIRECT:
            object.__setattr__(self, name, getattr(fake, name))
        extra: dict[str, Any] = {
            "send_to_spooler": fake.spool,
            "i_am_the_spooler": lambda: True if fake.i_am_the_spooler() else None,
            "spooler_pid": lambda: os.getpid() if fake.spooler.enabled else 0,
            "call": _raw_call(fake),
            "rpc": lambda node, name, *args: _raw_call(fake)(name, *args),
            "masterpid": os.getpid,
            "mule_msg_extra_hooks": [],
            "SPOOL_OK": SPOOL_OK,
            "SPOOL_RETRY": SPOOL_RETRY,
            "SPOOL_IGNORE": SPOOL_IGNORE,
            "version": b"2.0.31-fake",
            "hostname": b"fake",
        }
        for name, value in extra.items():
            object.__setattr__(self, name, value)

    @property
    def _fake(self) -> FakeUwsgi:
        return object.__getattribute__(self, FAKE_MODULE_MARKER)

    @property
    def numproc(self) -> int:
        return self._fake.workers

    @property
    def opt(self) -> dict[str, Any]:
        """What ``uwsgi.opt`` would show for this fake's layout."""
        fake = self._fake
        opt: dict[str, Any] = {"master": True, "processes": str(fake.workers).encode()}
        if fake.mule_count:
            opt["mules"] = str(fake.mule_count).encode()
        if fake.spooler.enabled:
            opt["spooler"] = fake.spooler.directory
        if fake.spooler.ordered:
            opt["spooler-ordered"] = True
        if fake.locks.count:
            opt["locks"] = str(fake.locks.count).encode()
        return opt

    def _hook(name: str) -> property:  # type: ignore[misc]  # noqa: N805 - property factory
        getter_name, setter_name = {
            "spooler": ("get_spooler", "set_spooler"),
            "mule_msg_hook": ("get_msg_hook", "set_msg_hook"),
            "post_fork_hook": ("get_post_fork_hook", "set_post_fork_hook"),
        }[name]

        def fget(self: FakeUwsgiModule) -> Any:
            value = getattr(self._fake, getter_name)()
            if value is None:
                raise AttributeError(f"module 'uwsgi' has no attribute {name!r}")
            return value

        def fset(self: FakeUwsgiModule, value: Any) -> None:
            getattr(self._fake, setter_name)(value)

        def fdel(self: FakeUwsgiModule) -> None:
            getattr(self._fake, setter_name)(None)

        return property(fget, fset, fdel)

    spooler = _hook("spooler")
    mule_msg_hook = _hook("mule_msg_hook")
    post_fork_hook = _hook("post_fork_hook")
    del _hook


def _raw_call(fake: FakeUwsgi) -> Any:
    def call(name: bytes, *args: bytes) -> bytes | None:
        """``uwsgi.call``: on Python 3 the name and arguments must be bytes."""
        if not isinstance(name, bytes) or not all(isinstance(a, bytes) for a in args):
            raise ValueError("unable to call rpc function")
        return fake.rpc_call(name, *args)

    return call


class DropIn:
    """The installed drop-in: ``fake``, ``uwsgi`` (the module), ``uninstall()``."""

    NAMES = ("uwsgi", "uwsgidecorators")

    def __init__(self, fake: FakeUwsgi) -> None:
        self.fake = fake
        self.uwsgi = FakeUwsgiModule(fake)
        self.installed = False
        self._saved: dict[str, types.ModuleType | None] = {}
        self._before: set[str] = set()

    def install(self) -> Self:
        if self.installed:
            return self
        from .. import decorators

        decorators.reset_decorators()
        self._saved = {name: sys.modules.get(name) for name in self.NAMES}
        self._before = set(sys.modules)
        sys.modules["uwsgi"] = self.uwsgi
        sys.modules["uwsgidecorators"] = decorators
        self.fake.__enter__()
        self.installed = True
        return self

    def load(self, module_name: str, *, fork: bool = True) -> types.ModuleType:
        """Import the application module as uWSGI does: in the master, before
        fork (so its signal registrations route), then run the post-fork
        hooks in every process unless ``fork`` is False."""
        with self.fake.as_master():
            module = importlib.import_module(module_name)
        if fork:
            self.fake.simulate_fork()
        return module

    def uninstall(self, *, purge: bool = True) -> None:
        """Restore the previous modules and deactivate the fake. With
        ``purge``, modules imported meanwhile that reference the fake are
        removed from ``sys.modules``."""
        if not self.installed:
            return
        from .. import decorators

        self.installed = False
        try:
            self.fake.__exit__(None, None, None)
        finally:
            for name, module in self._saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
            if purge:
                for name in [n for n in list(sys.modules) if n not in self._before]:
                    module = sys.modules.get(name)
                    if module is not None and _references(module, self.uwsgi, self.fake, decorators):
                        del sys.modules[name]
            decorators.reset_decorators()

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()


def _references(module: types.ModuleType, fake_module: types.ModuleType, fake: FakeUwsgi,
                decorators: types.ModuleType) -> bool:
    if module is decorators or module.__name__.startswith("uwsgi_mules"):
        return False
    for value in list(vars(module).values()):
        if value is fake_module or value is decorators or value is fake:
            return True
        if getattr(value, "__self__", None) in (fake, fake_module):
            return True
        for owner in (getattr(type(value), "__module__", None), getattr(value, "__module__", None)):
            if isinstance(owner, str) and (owner == decorators.__name__ or owner.startswith(decorators.__name__ + ".")):
                return True
    return False


def install_dropin(fake: FakeUwsgi | None = None, **fake_options: Any) -> DropIn:
    """Install ``fake`` (or a new ``FakeUwsgi(**fake_options)``) as the
    ``uwsgi`` and ``uwsgidecorators`` modules and activate it. Use the result
    as a context manager, or call ``.uninstall()``."""
    if fake is not None and fake_options:
        raise TypeError("pass a FakeUwsgi or options for a new one, not both")
    return DropIn(fake if fake is not None else FakeUwsgi(**fake_options)).install()


__all__ = ["DropIn", "FakeUwsgiModule", "install_dropin"]
