"""``@spool``, ``@spoolforever``, ``@spoolraw`` and the spooler callable."""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable
from functools import partial
from typing import Any

from ..backends.selection import current_backend
from ..spooler import SPOOL_OK, SPOOL_RETRY, SpoolError, SpoolKeyCollision, encode_strict_args
from .spool_nonces import NONCE_KEY, TIME_KEY, new_nonce, nonce_store, reset_nonce_stores
from .spool_signing import SIGNATURE_KEY, reset_spool_signers, sign_task, signed_functions, spool_signer, verify_task
from .state import spooler_functions

#: keyword arguments that ``pass_arguments=True`` hands to uWSGI, not to the function
SPOOLER_ARGS = ("message_dict", "spooler", "priority", "at", "body")
#: keys the decorators write themselves
INTERNAL_KEYS = ("ud_spool_func", "ud_spool_ret", "args", "kwargs", SIGNATURE_KEY, NONCE_KEY, TIME_KEY)

_previous_spooler: Callable[[dict[Any, Any]], Any] | None = None


def reset_spooling() -> None:
    global _previous_spooler
    _previous_spooler = None
    reset_spool_signers()
    reset_nonce_stores()


def _decode1(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def manage_spool_request(vars: dict[Any, Any]) -> int:  # noqa: A002 - original name
    """The spooler callable: run the ``@spool*`` function a task names. The
    task of a ``pass_arguments=True`` function (or any task carrying pickled
    arguments) runs only when its signature covers every key it has, and
    only once (see :mod:`.spool_nonces`)."""
    decoded = {_decode1(k): v for k, v in vars.items()}
    if "ud_spool_func" not in decoded and _previous_spooler is not None:
        return _previous_spooler(vars)
    # the function is looked up, and the task verified, before anything is unpickled
    name = _decode1(decoded["ud_spool_func"])
    func = spooler_functions[name]
    nonce = None
    if name in signed_functions or any(key in decoded for key in ("args", "kwargs", SIGNATURE_KEY)):
        refused = _refusal(vars, decoded)
        if refused:
            current_backend().log(
                f"uwsgi-mules: spooler task {_decode1(decoded.get('spooler_task_name', b'?'))!s} of "
                f"{func.__name__} refused and deleted: {refused}; its arguments were never unpickled"
            )
            return int(SPOOL_OK)
        nonce = _decode1(decoded[NONCE_KEY])
        for key in ("args", "kwargs"):
            decoded[key] = pickle.loads(decoded.pop(key))
    decoded = {k: _decode1(v) for k, v in decoded.items()}
    ret = func(*decoded["args"], **decoded["kwargs"]) if "args" in decoded else func(decoded)
    result = int(decoded.get("ud_spool_ret", ret))
    if nonce is not None and result == SPOOL_OK:
        nonce_store(current_backend()).finished(nonce)  # uWSGI deletes the file: no copy may run
    return result


def _refusal(raw: dict[Any, Any], decoded: dict[Any, Any]) -> str:
    """Why a signed task may not run ("" when it may: its nonce is now recorded)."""
    if decoded.get("args") is None or decoded.get("kwargs") is None:
        return "args or kwargs missing (a pass_arguments=True task always has both)"
    signature = _as_bytes(decoded.get(SIGNATURE_KEY))
    if signature is None:
        return f"no {SIGNATURE_KEY} (not spooled by uwsgi-mules' @spool, or by an older version)"
    backend = current_backend()
    try:
        signer = spool_signer(backend)
    except OSError as exc:
        return f"the spool key cannot be read ({exc})"
    if not verify_task(signer, signature, raw):
        return f"{SIGNATURE_KEY} does not verify with the spool key (forged, altered, or of an older version)"
    try:
        spooled_at = max(float(_decode1(decoded.get(TIME_KEY, b""))), _number(decoded.get("at")))
        task_name = os.path.basename(str(_decode1(decoded.get("spooler_task_name", b""))))
        return nonce_store(backend).admit(str(_decode1(decoded.get(NONCE_KEY, b""))), task_name, spooled_at,
                                          backend.wall_time())
    except (ValueError, TypeError) as exc:
        return f"its {TIME_KEY} or {NONCE_KEY} is malformed ({exc})"
    except OSError as exc:
        return f"its run could not be recorded as used ({exc}): it would run again"


def _number(value: Any) -> float:
    try:
        return float(_decode1(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()


def _read_spool_key() -> None:
    """Read the spool key at decoration (in the master before fork, where a
    relative spool directory still resolves); a failure shows at spool time."""
    try:
        spool_signer(current_backend())
    except OSError:
        pass
    nonce_store(current_backend())  # its directory resolved now, like the key's


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


def _text_key(key: object) -> object:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


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
        if pass_arguments:
            signed_functions.add(name)
            _read_spool_key()
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        """Spool a task. Keys and values must be ``str`` or ``bytes`` (as in
        uwsgidecorators; anything else raises ``ValueError``), keys that
        collide (``"a"`` and ``b"a"``, a dict key also given as a keyword, or
        one of the decorators' own keys) raise :class:`SpoolKeyCollision`."""
        own: list[tuple[Any, Any]] = list(self.base_dict.items())
        if self.ret is not None:
            own.append(("ud_spool_ret", str(self.ret)))
        user: list[tuple[Any, Any]] = []
        if not self.pass_arguments:
            if args:
                user += list(dict(args[0]).items())
            user += list(kwargs.items())
        else:
            for key in SPOOLER_ARGS:
                if key in kwargs:
                    user.append((key, kwargs.pop(key)))
            own += [("args", pickle.dumps(args)), ("kwargs", pickle.dumps(kwargs)), (NONCE_KEY, new_nonce()),
                    (TIME_KEY, str(int(current_backend().wall_time())))]
        for key, _ in user:
            if _text_key(key) in INTERNAL_KEYS:
                raise SpoolKeyCollision(
                    f"spool key {key!r} is written by the @spool decorators themselves (the spooler would "
                    "misread the task); pick another name"
                )
        bodies = [(k, v) for k, v in user if _text_key(k) == "body"]
        if len(bodies) > 1:
            raise SpoolKeyCollision(f"spool keys {bodies[0][0]!r} and {bodies[1][0]!r} are both the body")
        pairs = own + [(k, v) for k, v in user if _text_key(k) != "body"]
        body = _body(bodies[0][1]) if bodies else None
        if self.pass_arguments:  # the signature covers every key the spooler will hand over, and the body
            unsigned: dict[Any, bytes] = dict(encode_strict_args(pairs))
            if body is not None:
                unsigned[b"body"] = body
            pairs.append((SIGNATURE_KEY, sign_task(spool_signer(current_backend()), unsigned)))
        packet: dict[Any, bytes] = dict(encode_strict_args(pairs))
        if body is not None:
            packet[b"body"] = body
        return current_backend().spool(packet)

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        """Backward-compatible alias of calling the decorated function."""
        return self(*args, **kwargs)


class _spool(_spoolraw):  # noqa: N801
    ret = int(SPOOL_OK)


class _spoolforever(_spoolraw):  # noqa: N801
    ret = int(SPOOL_RETRY)


def _body(body: object) -> bytes:
    if not isinstance(body, (str, bytes)):
        raise SpoolError(f"spool body must be str or bytes, not {type(body).__name__}")
    return body.encode() if isinstance(body, str) else body


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
