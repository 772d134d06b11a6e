"""``@rpc``, ``@signal``, ``@timer``, ``@rbtimer``, ``@cron``, ``@filemon``, ``@erlang``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends.selection import current_backend
from ..errors import MulesError
from ..signals import Signal, SignalTarget, add_cron, add_file_monitor, add_rb_timer, add_timer


class ErlangNotSupported(MulesError, NotImplementedError):
    """``@erlang``: the Erlang bridge is not available from uwsgi-mules."""


def get_free_signal() -> int:
    """The lowest signal number with no handler (as uwsgidecorators)."""
    backend = current_backend()
    for signum in range(256):
        if not backend.signal_registered(signum):
            return signum
    raise Exception("No free uwsgi signal available")


# -- rpc ----------------------------------------------------------------------------------


class rpc:  # noqa: N801
    """Export the function as uWSGI RPC ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        current_backend().register_rpc(self.name, f)
        return f


# -- signals ----------------------------------------------------------------------------


class _signal_decorator:  # noqa: N801
    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.target = SignalTarget.coerce(kwargs.get("target", ""))
        signum = kwargs.get("signum")
        self.num = Signal(get_free_signal() if signum is None else signum).num

    def _register(self, f: Callable[[int], Any]) -> Signal:
        return Signal(self.num).register(f, self.target)


class signal(_signal_decorator):  # noqa: N801
    """``@signal(17, target="mules")``: register the handler of signal 17."""

    def __init__(self, num: int, **kwargs: Any) -> None:
        super().__init__({**kwargs, "signum": num})

    def __call__(self, f: Callable[[int], Any]) -> Callable[[int], Any]:
        self._register(f)
        return f


class timer(_signal_decorator):  # noqa: N801
    """``@timer(3)``: run the handler every 3 seconds."""

    def __init__(self, secs: int, **kwargs: Any) -> None:
        super().__init__(kwargs)
        self.secs = secs

    def __call__(self, f: Callable[[int], Any]) -> Callable[[int], Any]:
        add_timer(self._register(f), self.secs)
        return f


class rbtimer(_signal_decorator):  # noqa: N801
    """``@rbtimer(3)``: like ``@timer`` with a red-black timer
    (``iterations=N`` stops after N runs; the original always runs forever)."""

    def __init__(self, secs: int, **kwargs: Any) -> None:
        super().__init__(kwargs)
        self.secs = secs
        self.iterations = int(kwargs.get("iterations", 0))

    def __call__(self, f: Callable[[int], Any]) -> Callable[[int], Any]:
        add_rb_timer(self._register(f), self.secs, self.iterations)
        return f


class cron(_signal_decorator):  # noqa: N801
    """``@cron(minute, hour, day, month, weekday)``; -1 is any, -N every N."""

    def __init__(self, minute: int, hour: int, day: int, month: int, dayweek: int, **kwargs: Any) -> None:
        super().__init__(kwargs)
        self.minute, self.hour, self.day, self.month, self.dayweek = minute, hour, day, month, dayweek

    def __call__(self, f: Callable[[int], Any]) -> Callable[[int], Any]:
        add_cron(self._register(f), self.minute, self.hour, self.day, self.month, self.dayweek)
        return f


class filemon(_signal_decorator):  # noqa: N801
    """``@filemon("/path")``: run the handler whenever the path changes."""

    def __init__(self, fsobj: str, **kwargs: Any) -> None:
        super().__init__(kwargs)
        self.fsobj = fsobj

    def __call__(self, f: Callable[[int], Any]) -> Callable[[int], Any]:
        add_file_monitor(self._register(f), self.fsobj)
        return f


class erlang:  # noqa: N801
    """Not supported: raises :class:`ErlangNotSupported`."""

    def __init__(self, name: str) -> None:
        raise ErlangNotSupported(
            f"@erlang({name!r}): the Erlang bridge (uwsgi.erlang_register_process) is not supported "
            "by uwsgi-mules; use @rpc or a mule instead"
        )
