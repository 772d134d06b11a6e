"""Every uwsgidecorators decorator, through ``uwsgi_mules.decorators``.

Imported in the master before fork (like an app's ``import tasks``).
"""

from __future__ import annotations

import time

from uwsgi_mules.backends.selection import current_backend
from uwsgi_mules.decorators import (
    cron,
    filemon,
    harakiri,
    lock,
    mulefunc,
    postfork,
    rbtimer,
    rpc,
    signal,
    spool,
    spoolforever,
    spoolraw,
    thread,
    timer,
)

from .records import record, workdir

SPOOL_OK = -2
SPOOL_RETRY = -1


@postfork
def after_fork() -> None:
    record("postfork")


@spool
def spooled(args: dict[str, object]) -> None:
    record("d_spool", value=args["value"])


@spool(pass_arguments=True)
def spooled_args(a: int, b: str = "") -> None:
    record("d_spool_args", a=a, b=b)


@spoolforever
def forever(args: dict[str, object]) -> None:
    record("d_spoolforever", value=args["value"])


@spoolraw
def raw(args: dict[str, object]) -> int:
    record("d_spoolraw", value=args["value"])
    return SPOOL_OK


@rpc("hello")
def hello(*args: bytes) -> bytes:
    return b"hello " + b",".join(args)


@signal(40, target="mules")
def on_forty(signum: int) -> None:
    record("d_signal", signum=signum)


@timer(1, target="mule1")
def every_second(signum: int) -> None:
    record("d_timer", signum=signum)


@rbtimer(1, target="mule2", iterations=2)
def twice(signum: int) -> None:
    record("d_rbtimer", signum=signum)


@cron(-1, -1, -1, -1, -1, target="mule1")
def every_minute(signum: int) -> None:
    record("d_cron", signum=signum)


@cron(-5, -1, -1, -1, -1, target="mule1")
def every_five_minutes(signum: int) -> None:
    record("d_cron5", signum=signum)


WATCHED = str(workdir() / "decorated-watched.txt")
with open(WATCHED, "w") as _fh:
    _fh.write("start")


@filemon(WATCHED, target="mule1")
def watched_changed(signum: int) -> None:
    record("d_filemon", signum=signum)


@thread
def in_a_thread(tag: str) -> None:
    record("d_thread", tag=tag)


@lock
def under_lock(tag: str) -> str:
    record("d_lock", tag=tag, locked=current_backend().is_locked(0))
    return tag


@mulefunc(1)
def on_mule_one(tag: str) -> None:
    record("d_mulefunc", tag=tag, where="mule1")


@mulefunc("x")
def on_farm_x(tag: str) -> None:
    record("d_mulefunc", tag=tag, where="farm")


@mulefunc
def on_any_mule(tag: str) -> None:
    record("d_mulefunc", tag=tag, where="any")


@harakiri(30)
def slow_but_ok(value: int) -> int:
    time.sleep(0.01)
    return value * 2


# -- called in a worker by the scenario -------------------------------------------------


def exercise() -> dict[str, object]:
    from uwsgi_mules.decorators import erlang
    from uwsgi_mules.signals import Signal

    results: dict[str, object] = {}
    results["spool"] = isinstance(spooled(value="v1"), bytes)
    spooled.spool(value="v2")
    spooled_args(1, b="two")
    forever(value="f")
    raw({"value": "r"})
    results["rpc"] = current_backend().rpc_call("hello", b"a", b"b")
    Signal(40).send()
    in_a_thread("t1")
    results["lock"] = under_lock("l1")
    results["mulefunc"] = [on_mule_one("m1"), on_farm_x("m2"), on_any_mule("m3")]
    results["harakiri"] = slow_but_ok(21)
    try:
        erlang("proc")
    except NotImplementedError as exc:
        results["erlang"] = type(exc).__name__
    with open(WATCHED, "a") as fh:
        fh.write("changed")
    return results
