"""One application using every mule decorator of uwsgidecorators.

The decorators come from the real ``uwsgidecorators`` module, or from
``uwsgi_mules.decorators`` when ``MULE_LOOPS_DECORATORS=uwsgi_mules``: the
rest of the code is the same. Imported by uWSGI in the master before fork
(``--module``), or through the drop-in on the fake. Every run of a
decorated function appends a JSON line to ``$MULES_TEST_DIR/records``.

Layout: :data:`records.MULES` signal-only mules, farm ``f`` = mule 6.
"""

from __future__ import annotations

import os
import time

import uwsgi

from tests.support.calls import call_application as application

from .records import record

if os.environ.get("MULE_LOOPS_DECORATORS") == "uwsgi_mules":
    from uwsgi_mules import decorators as ud
else:
    import uwsgidecorators as ud  # the drop-in makes this uwsgi_mules.decorators on the fake

__all__ = ["application"]

#: @muleloop iterations that record before the loop body parks the mule
LOOP_ITERATIONS = 3


@ud.mule(1)
def brain() -> None:
    record("mule", module=ud.__name__)


_iterations = [0]


@ud.muleloop(4)
def loop_body() -> None:
    _iterations[0] += 1
    if _iterations[0] > LOOP_ITERATIONS:
        # the original loops forever: park the mule so the count is exact
        if os.environ.get("MULE_LOOPS_PARK", "1") == "1":
            time.sleep(3600)
        return
    record("muleloop", iteration=_iterations[0])


@ud.mulemsg(5)
def on_message(message: bytes) -> None:
    record("mulemsg", message=message.decode())


@ud.farm("f")
def on_farm_message(message: bytes) -> None:
    record("farm", message=message.decode())


#: a signal for mule 5, which waits in its @mulemsg loop
SIGNAL = 30


@ud.signal(SIGNAL, target="mule5")
def on_signal_in_mule_5(signum: int) -> None:
    record("signal", signum=signum)


# -- called in a worker -------------------------------------------------------------------


def send_messages() -> list[object]:
    """Raw sends, the same for both implementations."""
    return [
        uwsgi.mule_msg(b"to-mule-5-a", 5),
        uwsgi.mule_msg(b"to-mule-5-b", 5),
        uwsgi.farm_msg("f", b"to-farm-f-a"),
        uwsgi.farm_msg("f", b"to-farm-f-b"),
        uwsgi.signal(SIGNAL),
    ]
