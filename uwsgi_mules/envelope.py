"""The wire format of an offloaded call.

An envelope is ``MAGIC + pickle((version, path, args, kwargs))`` where
``path`` is ``"package.module:Qualified.name"``. The magic prefix lets a mule
tell offload envelopes from any other message (uwsgidecorators' dicts,
uwsgiconf's tuples, plain strings), which are passed on untouched.

Trust boundary: envelopes are unpickled in the mule. Only processes of the
local uWSGI stack can write to mule queues (they are socketpairs held by the
master, never exposed on the network), so whoever can send an envelope
already runs code in the stack. Never forward untrusted bytes to a mule queue
verbatim.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from .errors import NotOffloadable

MAGIC = b"\x00uwsgi-mules\x00"
VERSION = 1


class EnvelopeError(ValueError):
    """Bytes that start like an envelope but cannot be decoded."""


@dataclass(frozen=True)
class Envelope:
    """One offloaded call: the function's import path and its arguments."""

    path: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def describe(self) -> str:
        return f"{self.path}(args={len(self.args)}, kwargs={sorted(self.kwargs)})"


def encode(path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """Serialize a call; unpicklable arguments raise :class:`NotOffloadable`."""
    try:
        body = pickle.dumps((VERSION, path, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise NotOffloadable(
            f"cannot offload {path}: its arguments cannot be pickled ({exc}). "
            "Pass plain data (ids, strings, numbers, dicts) and load objects in the task."
        ) from exc
    return MAGIC + body


def is_envelope(message: bytes) -> bool:
    return message.startswith(MAGIC)


def decode(message: bytes) -> Envelope:
    """Decode bytes made by :func:`encode`; raise :class:`EnvelopeError` otherwise."""
    if not is_envelope(message):
        raise EnvelopeError("not an uwsgi-mules envelope")
    try:
        version, path, args, kwargs = pickle.loads(message[len(MAGIC):])
    except Exception as exc:  # truncated or corrupted pickle: report, never crash the mule
        raise EnvelopeError(f"corrupted envelope of {len(message)} bytes: {exc!r}") from exc
    if version != VERSION:
        raise EnvelopeError(f"envelope version {version} is not supported (expected {VERSION})")
    return Envelope(path, tuple(args), dict(kwargs))
