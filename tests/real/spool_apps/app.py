"""A spooler app for the spool-argument tests: ``@spool`` from the real
``uwsgidecorators`` or, with ``SPOOL_APP_DECORATORS=uwsgi_mules``, from
``uwsgi_mules.decorators``. The task function records what it received."""

from __future__ import annotations

import os

from tests.real.mule_loops.records import record
from tests.support.calls import call_application as application

from .cases import CASES

if os.environ.get("SPOOL_APP_DECORATORS") == "uwsgi_mules":
    from uwsgi_mules import decorators as ud
else:
    import uwsgidecorators as ud  # the drop-in makes this uwsgi_mules.decorators on the fake

__all__ = ["application"]

@ud.spool
def job(arguments: dict[str, object]) -> None:
    record("spooled", case=arguments["case"], values={k: repr(v) for k, v in arguments.items() if k in ("a", "n")})


def attempt(case: str) -> tuple[str, str]:
    """Spool one case in the worker: ("ok", "") or ("error", exception class)."""
    try:
        job(CASES[case])
    except ValueError as exc:
        return ("error", type(exc).__name__)
    return ("ok", "")


def attempt_typed_collision() -> tuple[str, str]:
    """uwsgi_mules.spooler.spool() with keys 1 and "1"."""
    from uwsgi_mules.spooler import spool

    try:
        spool({1: "a", "1": "b"})
    except ValueError as exc:
        return ("error", type(exc).__name__)
    return ("ok", "")


def attempt_raw(value_kind: str) -> tuple[str, str]:
    """Raw ``uwsgi.spool`` with a non-bytes value (the fake must refuse what uWSGI refuses)."""
    import uwsgi

    value = {"int": 5, "float": 1.5, "str": "x", "bytearray": bytearray(b"ok")}[value_kind]
    try:
        uwsgi.spool({b"ud_spool_func": b"job", b"ud_spool_ret": b"-2", b"case": b"raw_" + value_kind.encode(),
                     b"n": value})
    except ValueError as exc:
        return ("error", type(exc).__name__)
    return ("ok", "")
