"""The process environment as the C library sees it (what uWSGI's ``env`` option sets)."""

from __future__ import annotations

import ctypes
import os


def process_getenv(name: str) -> str | None:
    """An environment variable as the C library sees it.

    uWSGI's ``env`` option calls ``setenv()`` while parsing its options; under
    pyuwsgi the interpreter (and ``os.environ``) already exists by then, so
    only the C environment has the value.
    """
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to ask
        return None
    getenv = libc.getenv
    getenv.restype = ctypes.c_char_p
    getenv.argtypes = [ctypes.c_char_p]
    raw = getenv(name.encode())
    return raw.decode(errors="surrogateescape") if raw else None
