"""Mule decorators of uwsgidecorators: ``@mulefunc`` and the post-fork
mule programs ``@mule``, ``@muleloop``, ``@mulemsg`` and ``@farm``.

``@mule(N)``, ``@muleloop(N)``, ``@mulemsg(N)`` and ``@farm(name)`` add a
callable to the post-fork chain, as the original does: after uWSGI forks
mule N it runs the function once (``mule``), forever (``muleloop``), for
every message to mule N (``mulemsg``) or for every message to the farm in
each of its mules (``farm``). What differs, on purpose:

* the decorators return the function (the original returns None, so the
  decorated name could not be called or tested);
* the mule id and farm name are checked against the layout at decoration
  (the original silently never runs a function for mule 9 of 3);
* messages that are uwsgi-mules offloads (``Mule(N).offload()``,
  ``@mulefunc``, ``Farm(name).offload()``) are run by the runtime instead
  of being handed to the function as bytes; any other message goes to it;
* ``@mulemsg`` runs uWSGI signal handlers for that mule while it waits
  (uWSGI 2.0's ``mule_get_msg()`` with its default arguments never does);
* on the fake backend nothing blocks: the post-fork call of ``@mulemsg`` /
  ``@farm`` routes the messages that mule receives (``fake.run_pending()``
  or a threaded fake) to the function, and ``@muleloop`` runs one
  iteration per post-fork call (:meth:`FakeUwsgi.simulate_fork`); on real
  uWSGI (binary or pyuwsgi) they loop in the mule like the original.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from ..backends.base import Backend, MessageHook
from ..backends.selection import current_backend
from ..core.registry import ORIGINAL_ATTR
from ..errors import UnknownFarm, UnknownMule
from ..mule.dispatch import handle_message
from ..runtime.offload import mule_offload
from .postfork import append_to_chain
from .state import mule_functions

#: on a fake backend: the message handler of each mule whose post-fork call
#: started a ``@mulemsg`` / ``@farm`` loop (the first one wins, as the first
#: loop of the chain blocks the mule on real uWSGI)
_fake_routes: dict[int, Callable[[bytes], object]] = {}
#: attribute of the hook that serves :data:`_fake_routes`
_ROUTES_MARKER = "__uwsgi_mules_mule_loops__"


def reset_mule_loops() -> None:
    _fake_routes.clear()


class mulefunc:  # noqa: N801
    """Run the function in a mule: ``@mulefunc`` (any mule), ``@mulefunc(3)``
    (mule 3) or ``@mulefunc("farm")`` (one mule of the farm). The call
    returns None once queued and raises if it cannot be queued."""

    def __init__(self, f: Callable[..., Any] | int | str | bytes) -> None:
        self._offloaded: Callable[..., Any] | None = None
        if callable(f):
            self.mule: int | str | bytes = 0
            self._bind(f)
        else:
            self.mule = f

    def _bind(self, f: Callable[..., Any]) -> None:
        target = self.mule.decode() if isinstance(self.mule, bytes) else self.mule
        self._offloaded = mule_offload(target)(f)
        self.fname = f.__name__
        mule_functions[f.__name__] = f
        functools.update_wrapper(self, f)
        setattr(self, ORIGINAL_ATTR, f)  # the mule resolves the module attribute to ``f``

    def real_call(self, *args: Any, **kwargs: Any) -> None:
        assert self._offloaded is not None
        self._offloaded(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Offload and return a handle on the result (see ``mule_offload``)."""
        assert self._offloaded is not None
        return self._offloaded.submit(*args, **kwargs)  # type: ignore[attr-defined]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._offloaded is None:
            self._bind(args[0])
            return self
        self.real_call(*args, **kwargs)
        return None


def mule_msg_dispatcher(message: bytes) -> Any:
    """Run an offload envelope (what ``@mulefunc`` sends). A message in the
    original uwsgidecorators wire format (a bare pickle) is refused with a log
    line and never unpickled: anyone who can queue a message would run code."""
    if handle_message(message):
        return True
    current_backend().log(
        f"uwsgi-mules: refused a {len(message)} bytes mule message that is not an offload envelope "
        "(the original uwsgidecorators format is a bare pickle and is never unpickled)"
    )
    return None


# -- @mule, @muleloop, @mulemsg, @farm ----------------------------------------------------


def _check_mule(num: object) -> int:
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise UnknownMule(f"mule ids start at 1, got {num!r}")
    topology = current_backend().topology()
    if topology is not None and num > topology.mule_count:
        raise UnknownMule(f"mule {num} does not exist: this uWSGI has {topology.mule_count} mule(s)")
    return num


def _check_farm(name: object) -> str | None:
    if name is None:
        return None
    if isinstance(name, bytes):
        name = name.decode()
    if not isinstance(name, str) or not name:
        raise UnknownFarm(f"a farm name must be a non-empty str, got {name!r}")
    topology = current_backend().topology()
    if topology is not None and topology.farm(name) is None:
        known = ", ".join(f.name for f in topology.farms) or "none"
        raise UnknownFarm(f"farm {name!r} does not exist (farms: {known})")
    return name


def _handle(f: Callable[[bytes], object], message: bytes) -> None:
    """An offload envelope runs through the runtime; any other message goes to ``f``."""
    if not handle_message(message):
        f(message)


def _die(backend: Backend) -> None:
    """The original prints the exception and exits the mule (uWSGI respawns
    it); on a fake the exception propagates (``simulate_fork`` reports it)."""
    if not backend.is_real:
        raise  # noqa: PLE0704 - called from an except block
    exc_type, exc, tb = sys.exc_info()
    if exc_type is not None and exc is not None:  # always: called from an except block
        sys.excepthook(exc_type, exc, tb)
    sys.exit(1)


def _route_on_fake(backend: Backend, mule_id: int, handler: Callable[[bytes], object]) -> None:
    _fake_routes.setdefault(mule_id, handler)
    current = backend.get_msg_hook()
    if current is not None and getattr(current, _ROUTES_MARKER, False):
        return
    previous: MessageHook | None = current

    def uwsgi_mules_mule_loops(message: bytes) -> object:
        route = _fake_routes.get(current_backend().mule_id())
        if route is not None:
            return route(message)
        return previous(message) if previous is not None else None

    setattr(uwsgi_mules_mule_loops, _ROUTES_MARKER, True)
    backend.set_msg_hook(uwsgi_mules_mule_loops)


class mule_brain:  # noqa: N801 - uwsgidecorators' name
    """Post-fork callable of ``@mule(num)``: run ``f()`` once in mule ``num``."""

    def __init__(self, f: Callable[[], Any], num: int) -> None:
        self.f = f
        self.num = num

    def __call__(self) -> None:
        backend = current_backend()
        if backend.mule_id() == self.num:
            try:
                self.f()
            except Exception:  # noqa: BLE001 - as uwsgidecorators: any error prints and ends the mule
                _die(backend)


class mule_brainloop(mule_brain):  # noqa: N801
    """Post-fork callable of ``@muleloop(num)``: run ``f()`` again and again
    in mule ``num`` (one iteration per call on a fake)."""

    def __call__(self) -> None:
        backend = current_backend()
        if backend.mule_id() != self.num:
            return
        while True:
            try:
                self.f()
            except Exception:  # noqa: BLE001 - as uwsgidecorators: any error prints and ends the mule
                _die(backend)
            if not backend.is_real:
                return


class mulemsg_loop:  # noqa: N801
    """Post-fork callable of ``@mulemsg(num)``: ``f(message)`` for every
    message mule ``num`` receives."""

    def __init__(self, f: Callable[[bytes], Any], num: int) -> None:
        self.f = f
        self.num = num

    def __call__(self) -> None:
        backend = current_backend()
        if backend.mule_id() != self.num:
            return
        if not backend.is_real:
            _route_on_fake(backend, self.num, functools.partial(_handle, self.f))
            return
        while True:
            # signals=False: uWSGI 2.0 runs this mule's signal handlers (and returns None) only then
            message = backend.mule_get_msg(False, True, 65536, -1)
            if message:
                _handle(self.f, message)


class farm_loop:  # noqa: N801
    """Post-fork callable of ``@farm(name)``: ``f(message)`` for every farm
    message, in each mule of the farm (``name=None``: mules in any farm)."""

    def __init__(self, f: Callable[[bytes], Any], farm: str | None) -> None:
        self.f = f
        self.farm = farm

    def __call__(self) -> None:
        backend = current_backend()
        mule_id = backend.mule_id()
        if mule_id == 0 or not backend.in_farm(self.farm):
            return
        if not backend.is_real:
            _route_on_fake(backend, mule_id, functools.partial(_handle, self.f))
            return
        while True:
            message = backend.farm_get_msg()  # every farm of this mule, as the original
            if message:
                _handle(self.f, message)


class mule:  # noqa: N801
    """``@mule(2)``: run the function once in mule 2, after it is forked."""

    def __init__(self, num: int) -> None:
        self.num = _check_mule(num)

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        append_to_chain(mule_brain(f, self.num))
        return f


class muleloop(mule):  # noqa: N801
    """``@muleloop(2)``: run the function forever in mule 2."""

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        append_to_chain(mule_brainloop(f, self.num))
        return f


class mulemsg:  # noqa: N801
    """``@mulemsg(2)``: call the function with every message mule 2 receives."""

    def __init__(self, num: int) -> None:
        self.num = _check_mule(num)

    def __call__(self, f: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        append_to_chain(mulemsg_loop(f, self.num))
        return f


class farm:  # noqa: N801
    """``@farm("reports")``: call the function with every message of the
    farm, in each of its mules."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.name = _check_farm(name)

    def __call__(self, f: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        append_to_chain(farm_loop(f, self.name))
        return f
