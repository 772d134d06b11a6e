"""Signed result records: what a mule stores in the results cache.

A record is ``RESULT_PREFIX + tag + pickle(outcome)``; ``tag`` is the
instance key's 16-byte keyed BLAKE2b of the result's cache key and the
pickle, so a value written by anyone else (another application sharing the
cache, a uwsgi socket client, another instance) or moved to another key
does not verify, and is never unpickled by the caller.
"""

from __future__ import annotations

import hmac
import struct

from ..envelope import TAG_SIZE, Signer

RESULT_PREFIX = b"\x00uwsgi-mules-result\x01"


class UnsignedResult(ValueError):
    """The bytes under a result key were not signed by this instance for that key."""


def _signed_bytes(key: str, record: bytes | memoryview) -> bytes:
    name = key.encode("utf-8", "surrogateescape")
    return struct.pack("!I", len(name)) + name + bytes(record)


def seal_result(signer: Signer, key: str, record: bytes) -> bytes:
    """``record`` (a pickle) signed for the cache key ``key``."""
    return RESULT_PREFIX + signer.tag(_signed_bytes(key, record)) + record


def open_result(signer: Signer, key: str, raw: bytes) -> memoryview:
    """The pickle of a record :func:`seal_result` made for ``key``;
    :class:`UnsignedResult` for anything else (never unpickle it)."""
    header = len(RESULT_PREFIX) + TAG_SIZE
    if not raw.startswith(RESULT_PREFIX) or len(raw) < header:
        raise UnsignedResult(f"the {len(raw)} bytes under {key} are not a signed uwsgi-mules result")
    view = memoryview(raw)
    record = view[header:]
    if not hmac.compare_digest(signer.tag(_signed_bytes(key, record)), view[len(RESULT_PREFIX) : header]):
        raise UnsignedResult(f"the result under {key} does not verify with this instance's key (forged or foreign)")
    return record
