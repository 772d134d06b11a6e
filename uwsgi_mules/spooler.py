"""The uWSGI spooler, typed: spool tasks with str/bytes/number values and
handle them with a clear return protocol.

>>> from uwsgi_mules.spooler import spool, spooler_handler, SpoolResult
>>> @spooler_handler
... def run(task):
...     send_mail(task.text("to"))
...     return SpoolResult.OK          # None means OK too; RETRY keeps the task
>>> spool({"to": "a@example.com"}, at=time.time() + 60)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from .backends.selection import current_backend
from .errors import MulesError

logger = logging.getLogger("uwsgi_mules")

#: the largest value (and the largest whole argument packet) uWSGI stores
MAX_VALUE = 0xFFFF
#: keys ``uwsgi.spool`` interprets itself
RESERVED_KEYS = ("spooler", "priority", "at", "body")

Value = str | bytes | int | float


class SpoolResult(IntEnum):
    """What a spooler handler returns (uWSGI's constants)."""

    OK = -2  #: done: the task file is deleted
    RETRY = -1  #: run it again at the next scan
    IGNORE = 0  #: not mine: leave the task (another handler may take it)


SPOOL_OK = SpoolResult.OK
SPOOL_RETRY = SpoolResult.RETRY
SPOOL_IGNORE = SpoolResult.IGNORE


class SpoolError(MulesError, ValueError):
    """A task that uWSGI would refuse, truncate or never run."""


class SpoolKeyCollision(SpoolError):
    """Two spool keys encode to the same bytes (``1`` and ``"1"``, ``"a"``
    and ``b"a"``, a dict key also passed as a keyword): uWSGI would keep one
    value and drop the other without a word."""


class SpoolValueTooLarge(SpoolError):
    """A value (or the whole argument packet) is over 65,535 bytes; uWSGI
    would truncate it. Pass large data as ``body=`` or by reference."""


def _to_bytes(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value).encode()
    raise SpoolError(f"spool value {name!r} must be str, bytes, int or float, got {type(value).__name__}")


def _key_bytes(key: object) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key).encode()
    raise SpoolError(f"spool key {key!r} must be str, bytes, int or float, got {type(key).__name__}")


def encode_args(args: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> dict[bytes, bytes]:
    """The bytes dict ``uwsgi.spool`` needs, refusing what it would truncate
    and keys that collide once encoded (``1`` and ``"1"`` both become
    ``b"1"``: uWSGI would keep one value and drop the other silently)."""
    pairs = args.items() if isinstance(args, Mapping) else args
    encoded: dict[bytes, bytes] = {}
    originals: dict[bytes, object] = {}
    size = 0
    for key, value in pairs:
        bkey = _key_bytes(key)
        if bkey in originals and originals[bkey] == key:
            raise SpoolKeyCollision(f"spool key {key!r} is given twice (in the dict and as a keyword?)")
        if bkey in originals:
            raise SpoolKeyCollision(
                f"spool keys {originals[bkey]!r} and {key!r} both become {bkey!r}; uWSGI would keep only "
                "one of the values. Use one key per value."
            )
        originals[bkey] = key
        bvalue = _to_bytes(value, str(key))
        if len(bkey) > MAX_VALUE or len(bvalue) > MAX_VALUE:
            raise SpoolValueTooLarge(
                f"spool value {key!r} has {len(bvalue)} bytes; uWSGI keeps at most {MAX_VALUE} "
                "(it would silently cut it). Use body= for large data."
            )
        size += len(bkey) + len(bvalue) + 4
        encoded[bkey] = bvalue
    if size > MAX_VALUE:
        raise SpoolValueTooLarge(f"spool arguments take {size} bytes; uWSGI accepts at most {MAX_VALUE}. Use body=.")
    return encoded


def encode_strict_args(args: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> dict[bytes, bytes]:
    """Like :func:`encode_args` for uwsgidecorators' ``@spool``: keys and
    values must be ``str`` or ``bytes`` (the original hands anything else to
    ``uwsgi.spool``, which raises ValueError)."""
    pairs = list(args.items() if isinstance(args, Mapping) else args)
    for key, value in pairs:
        for what, item in (("key", key), ("value", value)):
            if not isinstance(item, (str, bytes)):
                raise SpoolError(
                    f"spool {what} {item!r} (key {key!r}) must be str or bytes, not {type(item).__name__}, "
                    "as with uwsgidecorators (uWSGI refuses it with a ValueError). Convert it yourself, or "
                    "use uwsgi_mules.spooler.spool(), which converts numbers."
                )
    return encode_args(pairs)


def spool(
    args: Mapping[str, Value] | None = None,
    /,
    *,
    body: bytes | str | None = None,
    at: datetime | float | None = None,
    priority: int | None = None,
    spooler: str | None = None,
    **kwargs: Value,
) -> str:
    """Queue a task for the spooler; returns the task file path.

    Keys and values may be ``str``, ``bytes``, ``int`` or ``float``: this
    function converts them to the bytes uWSGI stores (numbers as their
    decimal text, ``5`` -> ``b"5"``; raw ``uwsgi.spool`` and uwsgidecorators
    refuse numbers with ValueError). Keys that become the
    same bytes (``1`` and ``"1"``, a key of ``args`` also given as a
    keyword) raise :class:`SpoolKeyCollision` instead of losing a value.

    ``at`` (a datetime or epoch seconds) runs it later; ``priority`` (>= 0,
    lower first) needs ``spooler-ordered`` or the task would never run;
    ``spooler`` names the spool directory when there are several.

    :raises SpoolValueTooLarge: a value over 65,535 bytes.
    :raises SpoolKeyCollision: two keys that encode to the same bytes.
    :raises SpoolError: no spooler, a reserved key, priority without ordering.
    """
    pairs: list[tuple[Any, Any]] = list((args or {}).items()) + list(kwargs.items())
    for key, _ in pairs:
        if _key_bytes(key).decode(errors="replace") in RESERVED_KEYS:
            raise SpoolError(f"{key!r} is interpreted by uWSGI; pass it as the {_key_bytes(key).decode()}= keyword")
    backend = current_backend()
    if backend.has_spooler() is False:
        raise SpoolError("no spooler is configured (uWSGI option spooler=DIR)")
    if at is not None:
        pairs.append(("at", int(at.timestamp() if isinstance(at, datetime) else float(at))))
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
            raise SpoolError(f"priority must be an int >= 0, got {priority!r}")
        if backend.spooler_ordered() is False:
            raise SpoolError(
                "a task with a priority only runs with spooler-ordered=true (uWSGI never scans priority "
                "directories otherwise)"
            )
        pairs.append(("priority", priority))
    if spooler is not None:
        pairs.append(("spooler", spooler))
    if not pairs:
        raise SpoolError("a spooled task needs at least one argument")
    packet: dict[Any, bytes] = dict(encode_args(pairs))
    if body is not None:
        packet[b"body"] = _to_bytes(body, "body")
    try:
        path = backend.spool(packet)
    except ValueError as exc:
        raise SpoolError(f"uWSGI refused the task: {exc}") from exc
    return path.decode(errors="surrogateescape") if isinstance(path, bytes) else str(path)


@dataclass
class SpoolTask:
    """A task as the handler sees it: str keys, bytes values."""

    name: str
    args: dict[str, bytes]
    body: bytes = b""
    raw: dict[bytes, bytes] = field(default_factory=dict, repr=False)

    def text(self, key: str, default: str | None = None) -> str | None:
        """``args[key]`` decoded as UTF-8."""
        value = self.args.get(key)
        return default if value is None else value.decode()

    @classmethod
    def from_raw(cls, raw: Mapping[Any, Any]) -> SpoolTask:
        def text(key: Any) -> str:
            return key.decode(errors="surrogateescape") if isinstance(key, bytes) else str(key)

        args = {text(k): (v if isinstance(v, bytes) else _to_bytes(v, text(k))) for k, v in raw.items()}
        name = text(args.pop("spooler_task_name", b""))
        body = args.pop("body", b"")
        return cls(name=name, args=args, body=body, raw=dict(raw))


TaskHandler = Callable[[SpoolTask], "SpoolResult | int | None"]


def spooler_handler(func: TaskHandler) -> TaskHandler:
    """Install ``func`` as this uWSGI's spooler callable (in the master, at
    import). It gets a :class:`SpoolTask`; returning None or
    ``SpoolResult.OK`` deletes the task, ``RETRY`` keeps it for the next
    scan, ``IGNORE`` leaves it; an exception is logged and retried (raw
    uWSGI retries a None result forever)."""

    def uwsgi_mules_spooler(raw: dict[bytes, bytes]) -> int:
        task = SpoolTask.from_raw(raw)
        try:
            result = func(task)
        except Exception:
            logger.exception("spooler task %s failed; it will be retried", task.name)
            return int(SpoolResult.RETRY)
        if result is None:
            return int(SpoolResult.OK)
        return int(result)

    uwsgi_mules_spooler.handler = func  # type: ignore[attr-defined]
    current_backend().set_spooler(uwsgi_mules_spooler)
    return func
