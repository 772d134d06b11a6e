"""The self-check of the compiled BLAKE2b against :mod:`hashlib`.

``uwsgi_mules._speedups`` carries its own keyed BLAKE2b (RFC 7693, written
for the fixed-key, 16-byte-tag case). Before the envelope code uses it, the
compiled tags of a few vectors are compared with ``hashlib.blake2b``'s:
keys of 1, 16, 32 and 64 bytes and data of 0 to 1,000 bytes, around the
128-byte block boundaries where a BLAKE2b implementation goes wrong. On any
difference the speedups are not used: :func:`checked_speedups` returns None,
warns (``RuntimeWarning``) and logs an error on the ``uwsgi_mules`` logger,
and every envelope is made and checked by the hashlib-based Python code.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import Any

logger = logging.getLogger("uwsgi_mules")

#: key sizes of the vectors (BLAKE2b accepts 1 to 64)
KEY_SIZES = (1, 16, 32, 64)
#: data sizes of the vectors: empty, one byte, around one and two blocks, several blocks
DATA_SIZES = (0, 1, 127, 128, 129, 255, 256, 257, 1000)
#: every byte value once, in a scrambled order, repeated: vectors are slices of it
_PATTERN = bytes((i * 197 + 31) & 0xFF for i in range(256)) * 5


def vector_bytes(size: int, seed: int) -> bytes:
    """``size`` (at most 1,024) deterministic bytes that differ with ``seed``."""
    start = seed % 256
    return _PATTERN[start : start + size]


def first_mismatch(module: Any, tag_size: int) -> str | None:
    """The first vector whose tag from ``module.Signer`` differs from
    hashlib's keyed BLAKE2b, described, or None when all agree."""
    for key_size in KEY_SIZES:
        key = vector_bytes(key_size, key_size)
        signer = module.Signer(key)
        for data_size in DATA_SIZES:
            data = vector_bytes(data_size, data_size + 1)
            expected = hashlib.blake2b(data, key=key, digest_size=tag_size).digest()
            got = signer.tag(data)
            if got != expected:
                return (f"key of {key_size} bytes, data of {data_size} bytes: compiled tag {bytes(got).hex()}, "
                        f"hashlib {expected.hex()}")
    return None


def checked_speedups(module: Any, tag_size: int) -> Any:
    """``module`` when its BLAKE2b agrees with hashlib on every vector, else
    None after a ``RuntimeWarning`` and an error log line (the caller then
    uses the hashlib-based Python implementation)."""
    mismatch = first_mismatch(module, tag_size)
    if mismatch is None:
        return module
    message = (f"uwsgi-mules: the compiled BLAKE2b of {getattr(module, '__name__', module)!s} disagrees with "
               f"hashlib ({mismatch}); the C speedups are disabled and the Python envelope code is used")
    logger.error(message)
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return None
