"""``Signal``: a uWSGI signal number that registers, sends and waits safely."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from ..backends.base import Backend
from ..backends.selection import current_backend
from .errors import InvalidSignal, SignalRegistrationError, SignalRoutingWarning, UnknownSignalTarget
from .targets import WORKER, SignalTarget

Handler = Callable[[int], object]
H = TypeVar("H", bound=Handler)


class Signal:
    """uWSGI signal ``num`` (0..255).

    >>> tick = Signal(17)
    >>> tick.register(on_tick, SignalTarget.mules())   # in the master, at import
    >>> tick.send()                                    # from anywhere
    """

    __slots__ = ("num",)
    num: int

    def __init__(self, num: int | Signal) -> None:
        if isinstance(num, Signal):
            num = num.num
        if isinstance(num, bool) or not isinstance(num, int):
            raise InvalidSignal(f"a signal number must be an int, got {num!r}")
        if not 0 <= num <= 255:
            raise InvalidSignal(f"signal numbers are 0..255, got {num} (raw uWSGI would wrap it to {num % 256})")
        self.num = num

    def __repr__(self) -> str:
        return f"Signal({self.num})"

    def __int__(self) -> int:
        return self.num

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signal) and other.num == self.num

    def __hash__(self) -> int:
        return hash(("Signal", self.num))

    @classmethod
    def free(cls) -> Signal:
        """The lowest number with no handler in this process's table."""
        backend = current_backend()
        for num in range(256):
            if not backend.signal_registered(num):
                return cls(num)
        raise SignalRegistrationError("all 256 uWSGI signals are registered")

    @property
    def registered(self) -> bool:
        """Whether this process's signal table has a handler for it."""
        return current_backend().signal_registered(self.num)

    def register(self, handler: Handler, target: SignalTarget | str | Any = WORKER) -> Signal:
        """Run ``handler(num)`` in ``target`` whenever the signal is raised.

        Register in the master (module import before fork, no ``lazy-apps``):
        uWSGI routes with the master's table. In a mule or the spooler this
        raises :class:`SignalRegistrationError`; in a worker it works only for
        that worker's table and warns with :class:`SignalRoutingWarning`.
        """
        if not callable(handler):
            raise TypeError(f"a signal handler must be callable, got {handler!r}")
        register_signal(current_backend(), self.num, SignalTarget.coerce(target), handler)
        return self

    def handle(self, target: SignalTarget | str | Any = WORKER) -> Callable[[H], H]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: H) -> H:
            self.register(handler, target)
            return handler

        return decorate

    def send(self) -> None:
        """Raise the signal: the master routes it to its registered target."""
        current_backend().signal(self.num)

    def wait(self) -> int:
        """Block until this signal reaches this process (its handler, if any,
        runs first); returns the number."""
        return signal_wait(self)


def signal_wait(signal: Signal | int | None = None) -> int:
    """Block until a signal (or ``signal``) reaches this process; return its number.

    Real uWSGI has no timeout here (the fake raises TimeoutError after
    ``fake.signals.wait_timeout`` seconds instead of hanging a test).
    """
    backend = current_backend()
    if signal is None:
        backend.signal_wait()
    else:
        backend.signal_wait(Signal(signal).num if not isinstance(signal, Signal) else signal.num)
    return backend.signal_received()


def signal_received() -> int:
    """The number the last :func:`signal_wait` of this process received."""
    return current_backend().signal_received()


def register_signal(backend: Backend, num: int, target: SignalTarget, handler: Handler, *, stacklevel: int = 4) -> None:
    """Checks that keep registrations where routing works, then registers."""
    check_target(backend, target)
    mule = backend.mule_id()
    if mule:
        raise SignalRegistrationError(
            f"signal {num}: mule {mule} cannot register handlers (uWSGI: 'only the master and the "
            "workers can register signal handlers'). Register at import time of your app in the "
            "master (without lazy-apps); mules inherit the master's table."
        )
    if backend.i_am_the_spooler():
        raise SignalRegistrationError(f"signal {num}: the spooler cannot register signal handlers")
    worker = backend.worker_id()
    if worker:
        warnings.warn(
            SignalRoutingWarning(
                f"signal {num} registered in worker {worker} after fork: uWSGI routes signals with the "
                "master's table, so other processes (and the target you named) will not run this "
                "handler. Register at import time in the master (no lazy-apps)."
            ),
            stacklevel=stacklevel,
        )
    elif backend.signal_registered(num):
        raise SignalRegistrationError(f"signal {num} is already registered (uWSGI cannot re-register in the master)")
    try:
        backend.register_signal(num, target.raw, handler)
    except ValueError as exc:
        raise SignalRegistrationError(f"uWSGI refused to register signal {num} for {target.describe()}: {exc}") from exc


def check_target(backend: Backend, target: SignalTarget) -> None:
    """Refuse mules, farms and a spooler the instance does not have."""
    topology = backend.topology()
    if target.kind in ("mule", "mules", "farm") and topology is not None:
        if topology.mule_count == 0:
            raise UnknownSignalTarget(f"cannot signal {target.describe()}: no mules are configured")
        if target.kind == "mule" and target.number > topology.mule_count:
            raise UnknownSignalTarget(f"mule {target.number} does not exist ({topology.mule_count} configured)")
        if target.kind == "farm":
            farm = topology.farm(target.farm_name)
            if farm is None:
                known = ", ".join(repr(f.name) for f in topology.farms) or "none"
                raise UnknownSignalTarget(f"farm {target.farm_name!r} does not exist (configured farms: {known})")
            programmed = [m for m in farm.mules if topology.mules[m - 1].kind != "signal"]
            if programmed:
                warnings.warn(
                    SignalRoutingWarning(
                        f"farm {target.farm_name!r} has programmed mules {programmed}: only signal-only "
                        "mules read farm signals (mule_get_msg never does), so those mules will not run it"
                    ),
                    stacklevel=5,
                )
    if target.kind == "spooler" and backend.has_spooler() is False:
        raise UnknownSignalTarget("cannot signal the spooler: no spooler is configured")
