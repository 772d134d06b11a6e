"""The process environment as the C library sees it (what uWSGI's ``env`` option sets)."""

from __future__ import annotations

from ..instance import c_getenv


def process_getenv(name: str) -> str | None:
    """An environment variable as the C library sees it (None when unset or empty).

    uWSGI's ``env`` option calls ``setenv()`` while parsing its options; under
    pyuwsgi the interpreter (and ``os.environ``) already exists by then, so
    only the C environment has the value. One reader for the whole package:
    :func:`uwsgi_mules.instance.c_getenv`, which also computes the runtime
    directory as the C plugin of the master does.
    """
    return c_getenv(name) or None
