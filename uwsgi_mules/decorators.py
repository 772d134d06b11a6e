"""uWSGI's ``uwsgidecorators``, same names and behaviour, safe and testable.

Change ``from uwsgidecorators import timer`` to
``from uwsgi_mules.decorators import timer`` and the code runs under real
uWSGI (or pyuwsgi) and under the fake backend. Differences from the
original, all deliberate:

* nothing happens at import: the spooler callable and ``post_fork_hook``
  are installed by the first ``@spool*`` / ``@postfork`` (chaining any
  callable the application had set);
* ``@mulefunc`` is built on :func:`uwsgi_mules.mule_offload`: it works with
  a farm name on Python 3, dispatches by module path (no name collisions)
  and raises instead of dropping a call on a full queue;
* signal numbers, targets and cron fields are validated (no mod-256 wrap,
  no unknown target silently ignored); registering in a mule raises and in
  a worker warns (see :mod:`uwsgi_mules.signals`);
* spool values over 65,535 bytes raise instead of being truncated; two
  different spool functions with one name raise instead of overwriting;
* ``@harakiri`` clears the timer even when the function raises;
  ``@postfork(N)`` returns the decorated object (the original returns None);
* ``@erlang`` raises :class:`ErlangNotSupported`.

Call :func:`reset_decorators` between tests.
"""

from __future__ import annotations

import functools
import logging
import pickle
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from .backends.selection import current_backend
from .errors import MulesError
from .locks import Lock
from .registry import ORIGINAL_ATTR
from .runtime.offload import mule_offload
from .signals import Signal, SignalTarget, add_cron, add_file_monitor, add_rb_timer, add_timer
from .spooler import SPOOL_OK, SPOOL_RETRY, SpoolError, encode_args

logger = logging.getLogger("uwsgi_mules")

#: functions of ``@spool*`` by name, as in uwsgidecorators
spooler_functions: dict[str, Callable[..., Any]] = {}
#: functions of ``@mulefunc`` by name (informational; dispatch uses module paths)
mule_functions: dict[str, Callable[..., Any]] = {}
#: ``@postfork`` callables in order
postfork_chain: list[Callable[[], Any]] = []

_SPOOLER_ARGS = ("message_dict", "spooler", "priority", "at", "body")


class ErlangNotSupported(MulesError, NotImplementedError):
    """``@erlang``: the Erlang bridge is not available from uwsgi-mules."""


def reset_decorators() -> None:
    """Forget every decorated spool, mule and postfork function (tests)."""
    global _previous_spooler
    _previous_spooler = None
    spooler_functions.clear()
    mule_functions.clear()
    postfork_chain.clear()


def get_free_signal() -> int:
    """The lowest signal number with no handler (as uwsgidecorators)."""
    backend = current_backend()
    for signum in range(256):
        if not backend.signal_registered(signum):
            return signum
    raise Exception("No free uwsgi signal available")


def _decode1(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


# -- postfork -------------------------------------------------------------------


def postfork_chain_hook() -> None:
    """uWSGI's ``post_fork_hook``: run every ``@postfork`` callable."""
    for func in list(postfork_chain):
        func()


def _install_postfork_hook() -> None:
    backend = current_backend()
    current = backend.get_post_fork_hook()
    if current is postfork_chain_hook:
        return
    if current is not None:
        postfork_chain.insert(0, current)
    backend.set_post_fork_hook(postfork_chain_hook)


class postfork:  # noqa: N801 - uwsgidecorators' name
    """Run the function in every process uWSGI forks (``@postfork``), or
    only in worker N (``@postfork(N)``)."""

    def __init__(self, f: Callable[[], Any] | int) -> None:
        if callable(f):
            self.wid = 0
            self.f: Callable[[], Any] | None = f
        else:
            self.f = None
            self.wid = int(f)
        postfork_chain.append(self)
        _install_postfork_hook()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.f is not None:
            if self.wid > 0 and self.wid != current_backend().worker_id():
                return None
            return self.f()
        self.f = args[0]
        return self


# -- spooler ----------------------------------------------------------------------


def manage_spool_request(vars: dict[Any, Any]) -> int:  # noqa: A002 - original name
    """The spooler callable: run the ``@spool*`` function a task names."""
    decoded = {_decode1(k): v for k, v in vars.items()}
    if "ud_spool_func" not in decoded and _previous_spooler is not None:
        return _previous_spooler(vars)  # type: ignore[return-value]
    if "args" in decoded:
        for key in ("args", "kwargs"):
            decoded[key] = pickle.loads(decoded.pop(key))
    decoded = {k: _decode1(v) for k, v in decoded.items()}
    func = spooler_functions[decoded["ud_spool_func"]]
    if "args" in decoded:
        ret = func(*decoded["args"], **decoded["kwargs"])
    else:
        ret = func(decoded)
    return int(decoded.get("ud_spool_ret", ret))


_previous_spooler: Callable[[dict[Any, Any]], Any] | None = None


def _install_spooler() -> None:
    global _previous_spooler
    backend = current_backend()
    if backend.has_spooler() is False:
        raise SpoolError("you have to enable the uWSGI spooler (spooler=DIR) to use the @spool decorators")
    current = backend.get_spooler()
    if current is manage_spool_request:
        return
    _previous_spooler = current
    backend.set_spooler(manage_spool_request)


class _spoolraw:  # noqa: N801
    ret: int | None = None

    def __init__(self, f: Callable[..., Any], pass_arguments: bool) -> None:
        _install_spooler()
        name = f.__name__
        known = spooler_functions.get(name)
        if known is not None and _ident(known) != _ident(f):
            raise SpoolError(
                f"two spool functions are named {name!r} ({_ident(known)} and {_ident(f)}); "
                "uwsgidecorators dispatches by name, rename one"
            )
        self.f = f
        spooler_functions[name] = f
        f.spool = self.__call__  # type: ignore[attr-defined]
        self.pass_arguments = pass_arguments
        self.base_dict: dict[str, Any] = {"ud_spool_func": name}
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        arguments = dict(self.base_dict)
        if self.ret is not None:
            arguments["ud_spool_ret"] = str(self.ret)
        if not self.pass_arguments:
            if args:
                arguments.update(args[0])
            arguments.update(kwargs)
        else:
            for key in _SPOOLER_ARGS:
                if key in kwargs:
                    arguments[key] = kwargs.pop(key)
            arguments["args"] = pickle.dumps(args)
            arguments["kwargs"] = pickle.dumps(kwargs)
        body = arguments.pop("body", None)
        packet: dict[Any, bytes] = dict(encode_args(arguments))
        if body is not None:
            packet[b"body"] = body.encode() if isinstance(body, str) else bytes(body)
        return current_backend().spool(packet)

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        """Backward-compatible alias of calling the decorated function."""
        return self(*args, **kwargs)


class _spool(_spoolraw):  # noqa: N801
    ret = int(SPOOL_OK)


class _spoolforever(_spoolraw):  # noqa: N801
    ret = int(SPOOL_RETRY)


def _ident(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func.__name__)}"


def spool_decorate(f: Callable[..., Any] | None = None, pass_arguments: bool = False,
                   _class: type[_spoolraw] = _spoolraw) -> Any:
    if not f:
        return partial(_class, pass_arguments=pass_arguments)
    return _class(f, pass_arguments)


def spoolraw(f: Callable[..., Any] | None = None, pass_arguments: bool = False) -> Any:
    """Spool the call; the function's return value is the spooler's (SPOOL_OK...)."""
    return spool_decorate(f, pass_arguments)


def spool(f: Callable[..., Any] | None = None, pass_arguments: bool = False) -> Any:
    """Spool the call; the task is done once the function returns."""
    return spool_decorate(f, pass_arguments, _spool)


def spoolforever(f: Callable[..., Any] | None = None, pass_arguments: bool = False) -> Any:
    """Spool the call; the task runs again at every scan."""
    return spool_decorate(f, pass_arguments, _spoolforever)


# -- mules ----------------------------------------------------------------------------


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
    """Run a message in the original uwsgidecorators wire format."""
    msg = pickle.loads(message)
    if msg["service"] == "uwsgi_mulefunc":
        return mule_functions[msg["func"]](*msg["args"], **msg["kwargs"])
    return None


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


# -- threads, locks, harakiri ---------------------------------------------------------------


class thread:  # noqa: N801
    """Run each call in a new daemon thread; the call returns the function."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any) -> Callable[..., Any]:
        worker = threading.Thread(target=self.f, args=args, daemon=True)
        worker.start()
        return self.f


class lock:  # noqa: N801
    """Run the function holding uWSGI lock 0 (skipped in the spooler, as the
    original does)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_backend().i_am_the_spooler():
            return None
        with Lock(0):
            return self.f(*args, **kwargs)


class harakiri:  # noqa: N801
    """``@harakiri(10)``: uWSGI kills the process if a call takes over 10 s."""

    def __init__(self, seconds: int) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise ValueError(f"harakiri seconds must be an int >= 0, got {seconds!r}")
        self.s = seconds

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        self.f = f

        @functools.wraps(f)
        def real_call(*args: Any, **kwargs: Any) -> Any:
            backend = current_backend()
            backend.set_user_harakiri(self.s)
            try:
                return f(*args, **kwargs)
            finally:
                backend.set_user_harakiri(0)

        return real_call


__all__ = [
    "ErlangNotSupported",
    "cron",
    "erlang",
    "filemon",
    "get_free_signal",
    "harakiri",
    "lock",
    "manage_spool_request",
    "mule_functions",
    "mule_msg_dispatcher",
    "mulefunc",
    "postfork",
    "postfork_chain",
    "postfork_chain_hook",
    "rbtimer",
    "reset_decorators",
    "rpc",
    "signal",
    "spool",
    "spooler_functions",
    "spoolforever",
    "spoolraw",
    "thread",
    "timer",
]
