"""The wire format of an offloaded call, signed by the instance's key.

An envelope is ``MAGIC + VERSION_BYTE + tag + body``:

- ``MAGIC`` (13 bytes) tells offload envelopes from any other message
  (uwsgidecorators' dicts, uwsgiconf's tuples, plain strings), which are
  passed on untouched;
- ``tag`` (16 bytes) is a keyed BLAKE2b MAC of ``body`` with the secret of
  this uWSGI instance (:mod:`uwsgi_mules.instance`): a message whose tag
  does not verify is never unpickled;
- ``body`` is ``pickle((path, args, kwargs, target, meta))``: ``path`` is
  ``"package.module:Qualified.name"`` of a registered task, ``target`` where
  it was sent (mule id, 0 for the shared queue, or the farm name as bytes:
  used to re-queue it after a crash, a reload or a stop), ``meta`` None or a
  small dict (``retries``, ``attempt``, ``result``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import NotOffloadable
from .speedups_check import checked_speedups

MAGIC = b"\x00uwsgi-mules\x00"
VERSION = 2
#: magic and version: the start of every envelope of this format
PREFIX = MAGIC + bytes([VERSION])
TAG_SIZE = 16
#: bytes before the pickled body
HEADER_SIZE = len(PREFIX) + TAG_SIZE
KEY_SIZE = 32
PROTOCOL = pickle.HIGHEST_PROTOCOL

#: where an envelope was sent: a mule id (0: the shared queue) or a farm name
WireTarget = int | bytes


class EnvelopeError(ValueError):
    """Bytes that start like an envelope but cannot be trusted or decoded."""


class Opened(NamedTuple):
    """What ``Signer.open`` returns for a genuine envelope (the C speedups
    return a plain tuple of the same fields, in this order)."""

    func: Callable[..., Any] | None  #: the registered task, None if unregistered or a field has a wrong type
    path: Any
    args: Any
    kwargs: Any
    target: Any
    meta: Any


#: what :meth:`Signer.open` returns for a message that is not an envelope of this format
NOT_OURS = 0
#: what :meth:`Signer.open` returns for an envelope whose tag does not verify (never unpickled)
BAD_TAG = 1
#: why ``Signer.serve`` returned (the C receive loop; see the mule's loop)
SERVE_BATCH, SERVE_IDLE, SERVE_STOP, SERVE_SLOW, SERVE_FAILED = range(5)

# The in-flight record (:mod:`uwsgi_mules.mule.delivery.inflight`) is written
# here, by ``Signer.open`` (and by the C speedups) right before a task runs:
#: state byte, 3 pad bytes, message length
RECORD_STATE = struct.Struct("=BxxxI")
#: the crash counters after the state (crashed, requeued, dead)
RECORD_COUNTERS = struct.Struct("=QQQ")
#: bytes before the recorded message
RECORD_HEADER = RECORD_STATE.size + RECORD_COUNTERS.size
RECORD_IDLE = 0
RECORD_RUNNING = 1


def mark_running(buffer: Any, message: bytes) -> None:
    """Record ``message`` as running in a record's buffer (a message over the
    capacity keeps its head): the message first, then the state. The C
    speedups write the same bytes (``uwsgi_mules/_speedups.c``)."""
    length = len(message)
    capacity = len(buffer) - RECORD_HEADER
    if length > capacity:  # the head names the task
        length = capacity
        message = message[:length]
    if length >= 0:
        buffer[RECORD_HEADER : RECORD_HEADER + length] = message
        RECORD_STATE.pack_into(buffer, 0, RECORD_RUNNING, length)


#: set to 1 to run the Python implementation even when the C speedups are compiled
PURE_PYTHON_ENV = "UWSGIMULES_PURE_PYTHON"


def pure_python_forced() -> bool:
    """True when ``UWSGIMULES_PURE_PYTHON`` asks for the Python implementation."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


def speedups() -> Any:
    """The compiled ``uwsgi_mules._speedups`` module, or None (not built, or
    ``UWSGIMULES_PURE_PYTHON=1``). Both implementations give the same bytes
    and the same outcomes."""
    if pure_python_forced():
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    if (_speedups.PREFIX, _speedups.RECORD_HEADER, _speedups.SERVE_FAILED) != (PREFIX, RECORD_HEADER, SERVE_FAILED):
        # pragma: no cover - a stale build
        return None
    return _checked(_speedups)


class _SelfCheck:
    """The verdict of :func:`checked_speedups` on the module last checked, so
    that the compiled BLAKE2b is checked once per process, not per Signer or
    queue writer (a module that is not the one checked is checked anew)."""

    module: Any = None
    verdict: Any = None


def _checked(module: Any) -> Any:
    """``module`` once its BLAKE2b agreed with hashlib's, else None (loudly)."""
    if _SelfCheck.module is not module:
        _SelfCheck.verdict = checked_speedups(module, TAG_SIZE)
        _SelfCheck.module = module
    return _SelfCheck.verdict


class Signer:
    """Signs and opens envelopes with one instance key.

    The per-message operations are attributes bound at construction to the C
    speedups when they are compiled, else to the Python implementations of
    this module, so that hot paths call them without an extra Python frame:

    - ``tag(body)``: the 16-byte keyed BLAKE2b tag;
    - ``seal(body)``: ``PREFIX + tag + body``;
    - ``seal_call(path, args, kwargs, target, meta)``: the signed envelope of
      a call (whatever pickle raises propagates: see :func:`encode`);
    - ``sender(path, target, meta, send, limit)``: one function's send path,
      ``sender(args, kwargs)``: seals the call and, when it is at most
      ``limit`` bytes, calls ``send(envelope, target)``; returns True once
      queued, the envelope when it was not (too large, ``send`` returned a
      false value or raised ``ValueError``), False when pickling or sealing
      raised an ``Exception`` (other exceptions of ``send`` propagate);
    - ``open(message, tasks, record)``: :data:`NOT_OURS`, :data:`BAD_TAG`, or
      :class:`Opened` ``(func, path, args, kwargs, target, meta)`` for a
      genuine envelope, ``func`` being ``tasks[path]`` when the fields have the right types and
      the task is registered (else None). When ``func`` is found and
      ``record`` (an in-flight record's buffer) is not None, the message is
      written to it and marked running. An undecodable signed body raises.

    With the speedups, ``serve`` is the programmed mule's receive loop in C
    (see :meth:`uwsgi_mules.mule.loop.MuleLoop.serve`): it hands back
    what it does not run as ``(message, what open returned or raised)``;
    None without the speedups.
    """

    __slots__ = ("accelerated", "key", "mac", "open", "seal", "seal_call", "sender", "serve", "tag")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("an envelope key is at least 16 random bytes")
        self.key = key
        #: the keyed hash before any data: ``mac.copy()``, ``update(body)``, ``digest()``
        self.mac = hashlib.blake2b(key=key, digest_size=TAG_SIZE)
        fast_module = speedups()
        fast = fast_module.Signer(key) if fast_module is not None else None
        #: True when the C speedups do the work
        self.accelerated = fast is not None
        self.tag = fast.tag if fast is not None else self._py_tag
        self.seal = fast.seal if fast is not None else self._py_seal
        self.seal_call = fast.seal_call if fast is not None else _python_seal_call(self.mac)
        self.sender = fast.sender if fast is not None else _python_sender(self.seal_call)
        self.open = fast.open if fast is not None else _python_open(self.mac)
        #: the programmed mule's receive loop in C (``_speedups.Signer.serve``), or None
        self.serve = fast.serve if fast is not None else None

    def _py_tag(self, body: bytes | memoryview) -> bytes:
        mac = self.mac.copy()
        mac.update(body)
        return mac.digest()

    def _py_seal(self, body: bytes | memoryview) -> bytes:
        return PREFIX + self._py_tag(body) + bytes(body)

    def verified_body(self, message: bytes) -> memoryview:
        """The body of a genuine envelope; :class:`EnvelopeError` otherwise."""
        view = memoryview(message)
        body = view[HEADER_SIZE:]
        if not _header_ok(message) or not hmac.compare_digest(self.tag(body), view[len(PREFIX) : HEADER_SIZE]):
            raise EnvelopeError(rejection_reason(message))
        return body


def _header_ok(message: bytes) -> bool:
    return message.startswith(MAGIC) and len(message) >= HEADER_SIZE and message[len(MAGIC)] == VERSION


def rejection_reason(message: bytes) -> str:
    """Why a message :meth:`Signer.open` refused (not ours, or a bad tag) is not
    a genuine envelope, read from its header alone (nothing verified again)."""
    if not message.startswith(MAGIC):
        return "not an uwsgi-mules envelope"
    if not _header_ok(message):
        return f"envelope of {len(message)} bytes has no valid version {VERSION} header"
    return f"envelope of {len(message)} bytes has a bad signature (not made by this instance)"


def _python_seal_call(mac: Any) -> Callable[..., bytes]:
    """``Signer.seal_call`` in Python, with what it uses bound as locals."""
    copy = mac.copy
    dumps = pickle.dumps
    prefix, protocol = PREFIX, PROTOCOL

    def seal_call(path: Any, args: Any, kwargs: Any, target: Any, meta: Any) -> bytes:
        body = dumps((path, args, kwargs, target, meta), protocol)
        tag = copy()
        tag.update(body)
        return prefix + tag.digest() + body

    return seal_call


def _python_sender(seal_call: Callable[..., bytes]) -> Callable[..., Callable[[Any, Any], Any]]:
    """``Signer.sender`` in Python (what ``_speedups.Signer.sender`` does)."""

    def sender(path: Any, target: Any, meta: Any, send: Callable[[bytes, Any], Any],
               limit: int) -> Callable[[Any, Any], Any]:
        if not callable(send):
            raise TypeError("sender(): send must be callable")
        limit = int(limit)

        def send_call(args: Any, kwargs: Any) -> bool | bytes:
            try:
                payload = seal_call(path, args, kwargs, target, meta)
            except Exception:  # noqa: BLE001 - whatever pickle raises: the caller pickles again for NotOffloadable
                return False
            if len(payload) <= limit:
                try:
                    if send(payload, target):
                        return True
                except ValueError:
                    pass
            return payload

        return send_call

    return sender


def _python_open(mac: Any) -> Callable[[bytes, dict[str, Any], Any], Any]:
    """``Signer.open`` in Python (what ``_speedups.Signer.open`` does), with
    everything it uses bound as locals: it runs once per message."""
    copy = mac.copy
    same = hmac.compare_digest
    loads = pickle.loads
    prefix, tag_start, header = PREFIX, len(PREFIX), HEADER_SIZE
    record_running = mark_running
    opened = Opened

    def open_envelope(message: bytes, tasks: dict[str, Any], record: Any) -> int | tuple[Any, ...]:
        if not message.startswith(prefix):
            return NOT_OURS
        body = message[header:]
        check = copy()
        check.update(body)
        if not same(check.digest(), message[tag_start:header]):  # a short message fails here too
            return BAD_TAG
        decoded = loads(body)
        if type(decoded) is not tuple or len(decoded) != 5:
            raise ValueError("the signed body is not a (path, args, kwargs, target, meta) tuple")
        path, args, kwargs, target, meta = decoded
        func = None
        if type(path) is str and type(args) is tuple and type(kwargs) is dict and (meta is None or type(meta) is dict):
            func = tasks.get(path)
            if func is not None and record is not None:
                record_running(record, message)
        return opened(func, path, args, kwargs, target, meta)

    return open_envelope


@dataclass(frozen=True)
class Envelope:
    """One offloaded call: the task's import path, its arguments, where it was sent."""

    path: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: WireTarget = 0
    meta: dict[str, Any] | None = None

    def describe(self) -> str:
        """``path(args summary)`` for log lines, at most ~200 characters."""
        return describe_call(self.path, self.args, self.kwargs)

    @property
    def retries(self) -> int:
        return int((self.meta or {}).get("retries", 0))

    @property
    def attempt(self) -> int:
        return int((self.meta or {}).get("attempt", 0))


def describe_call(path: object, args: object, kwargs: object, limit: int = 200) -> str:
    """A short, safe summary of a call for log lines."""
    try:
        text = f"{path}(*{args!r}, **{kwargs!r})"
    except Exception:  # noqa: BLE001 - a hostile __repr__ (anything it raises) must not break logging
        text = f"{path}(<arguments not printable>)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pack(path: str, args: tuple[Any, ...], kwargs: dict[str, Any], target: WireTarget = 0,
         meta: dict[str, Any] | None = None) -> bytes:
    """The pickled body of a call; unpicklable arguments raise :class:`NotOffloadable`."""
    try:
        return pickle.dumps((path, args, kwargs, target, meta), protocol=PROTOCOL)
    except Exception as exc:
        raise NotOffloadable(
            f"cannot offload {path}: its arguments cannot be pickled ({exc}). "
            "Pass plain data (ids, strings, numbers, dicts) and load objects in the task."
        ) from exc


def encode(signer: Signer, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
           target: WireTarget = 0, meta: dict[str, Any] | None = None) -> bytes:
    """A signed envelope for a call."""
    return signer.seal(pack(path, args, kwargs, target, meta))


def is_envelope(message: bytes) -> bool:
    """True when ``message`` claims to be an envelope (starts with the magic)."""
    return message.startswith(MAGIC)


def unpack(body: bytes | memoryview) -> Envelope:
    """Decode a *verified* body (never call it on unverified bytes)."""
    try:
        path, args, kwargs, target, meta = pickle.loads(body)
    except Exception as exc:
        raise EnvelopeError(f"signed envelope body does not decode: {exc!r}") from exc
    if not isinstance(path, str) or not isinstance(args, tuple) or not isinstance(kwargs, dict):
        raise EnvelopeError("signed envelope body has fields of the wrong types")
    if meta is not None and not isinstance(meta, dict):
        raise EnvelopeError("signed envelope metadata is not a dict")
    return Envelope(path, args, kwargs, target, meta)


def decode(signer: Signer, message: bytes) -> Envelope:
    """Verify and decode an envelope; :class:`EnvelopeError` otherwise."""
    return unpack(signer.verified_body(message))


def reseal(signer: Signer, envelope: Envelope, **meta: Any) -> bytes:
    """A new envelope for the same call, with ``meta`` updated (re-queueing)."""
    merged = dict(envelope.meta or {})
    merged.update(meta)
    return encode(signer, envelope.path, envelope.args, envelope.kwargs, envelope.target, merged)
