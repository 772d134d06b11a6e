"""Hand-written programmed mules used as baselines (``--mule=bench.apps.mules:NAME``)."""

from __future__ import annotations

import pickle

from . import tasks

#: uwsgi-mules' envelope prefix (kept literal: the baseline must not import the library)
MAGIC = b"\x00uwsgi-mules\x00"


def discard() -> None:
    """Receive and drop: the fastest possible drain (per-call benchmark)."""
    import uwsgi

    get = uwsgi.mule_get_msg
    while True:
        get()


def raw_work(i, s):
    """The user function of the raw baseline: like ``um_work`` and friends it
    calls ``tasks.work`` (same number of Python frames for every library)."""
    tasks.work(i, s)


def raw_tick(r):
    tasks.tick(r)


def raw_stamp(t0):
    tasks.stamp(t0)


def raw_report(path):
    tasks.report(path)


def raw_loop(*get_args) -> None:
    """The raw baseline: ``mule_get_msg`` + unpickle the envelope + call.

    It receives exactly the bytes uwsgi-mules sends and runs the same
    functions, with the least code possible (a dict lookup by path; the
    pickle is read through a memoryview, no copy).
    """
    import uwsgi

    funcs = {
        "bench.apps.um_tasks:um_work": raw_work,
        "bench.apps.um_tasks:um_stamp": raw_stamp,
        "bench.apps.um_tasks:um_tick": raw_tick,
        "bench.apps.um_tasks:um_report": raw_report,
    }
    get = uwsgi.mule_get_msg
    skip = len(MAGIC)
    loads = pickle.loads
    while True:
        message = get(*get_args)
        if not message:
            continue
        _version, path, args, kwargs = loads(memoryview(message)[skip:])
        funcs[path](*args, **kwargs)


def raw_loop_typed_args() -> None:
    """Diagnostic: the raw loop, receiving with the arguments
    ``uwsgi_mules.mule:run`` passes (signals polled, farms, 64 KiB, no timeout)."""
    raw_loop(False, True, 65536, -1)
