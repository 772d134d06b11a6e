"""Signed cache values: what a mule stores in a results cache.

A value is ``prefix + tag + body``; ``tag`` is the instance key's 16-byte
keyed BLAKE2b of the prefix, the value's cache key and the body, so a value
written by anyone else (another application sharing the cache, a uwsgi
socket client, another instance), moved to another key or read as another
kind of value (another prefix) does not verify, and is never decoded.

Two kinds use it: ``submit()`` results (:data:`RESULT_PREFIX`, the body a
pickle of the outcome, :func:`seal_result`) and the Django tasks backend's
JSON records (:mod:`uwsgi_mules.contrib.django.tasks.records`).
"""

from __future__ import annotations

import hmac
import struct

from ..envelope import TAG_SIZE, Signer

RESULT_PREFIX = b"\x00uwsgi-mules-result\x01"


class UnsignedResult(ValueError):
    """The bytes under a result key were not signed by this instance for that key."""


def _signed_bytes(prefix: bytes, key: str, body: bytes | memoryview) -> bytes:
    name = key.encode("utf-8", "surrogateescape")
    return prefix + struct.pack("!I", len(name)) + name + bytes(body)


def seal_value(signer: Signer, prefix: bytes, key: str, body: bytes) -> bytes:
    """``body`` signed as a value of kind ``prefix`` for the cache key ``key``."""
    return prefix + signer.tag(_signed_bytes(prefix, key, body)) + body


def open_value(signer: Signer, prefix: bytes, key: str, raw: bytes) -> memoryview:
    """The body of a value :func:`seal_value` made for ``prefix`` and ``key``;
    :class:`UnsignedResult` for anything else (never decode it)."""
    header = len(prefix) + TAG_SIZE
    if not raw.startswith(prefix) or len(raw) < header:
        raise UnsignedResult(f"the {len(raw)} bytes under {key} are not a signed uwsgi-mules value")
    view = memoryview(raw)
    body = view[header:]
    if not hmac.compare_digest(signer.tag(_signed_bytes(prefix, key, body)), view[len(prefix) : header]):
        raise UnsignedResult(f"the value under {key} does not verify with this instance's key (forged or foreign)")
    return body


def seal_result(signer: Signer, key: str, record: bytes) -> bytes:
    """``record`` (a pickle) signed for the cache key ``key``."""
    return seal_value(signer, RESULT_PREFIX, key, record)


def open_result(signer: Signer, key: str, raw: bytes) -> memoryview:
    """The pickle of a record :func:`seal_result` made for ``key``;
    :class:`UnsignedResult` for anything else (never unpickle it)."""
    return open_value(signer, RESULT_PREFIX, key, raw)
