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
import pickle
from dataclasses import dataclass
from typing import Any, Union

from .errors import NotOffloadable

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
WireTarget = Union[int, bytes]


class EnvelopeError(ValueError):
    """Bytes that start like an envelope but cannot be trusted or decoded."""


class Signer:
    """Signs and verifies envelope bodies with one instance key."""

    __slots__ = ("key", "mac")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("an envelope key is at least 16 random bytes")
        self.key = key
        #: the keyed hash before any data: ``mac.copy()``, ``update(body)``, ``digest()``
        self.mac = hashlib.blake2b(key=key, digest_size=TAG_SIZE)

    def tag(self, body: bytes | memoryview) -> bytes:
        mac = self.mac.copy()
        mac.update(body)
        return mac.digest()

    def seal(self, body: bytes) -> bytes:
        """``body`` wrapped as an envelope."""
        return PREFIX + self.tag(body) + body

    def verified_body(self, message: bytes) -> memoryview:
        """The body of a genuine envelope; :class:`EnvelopeError` otherwise."""
        if not message.startswith(MAGIC):
            raise EnvelopeError("not an uwsgi-mules envelope")
        if len(message) < HEADER_SIZE or message[len(MAGIC)] != VERSION:
            raise EnvelopeError(f"envelope of {len(message)} bytes has no valid version {VERSION} header")
        view = memoryview(message)
        body = view[HEADER_SIZE:]
        if not hmac.compare_digest(self.tag(body), view[len(PREFIX) : HEADER_SIZE]):
            raise EnvelopeError(f"envelope of {len(message)} bytes has a bad signature (not made by this instance)")
        return body


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
    except Exception:  # a hostile __repr__ must not break logging
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
