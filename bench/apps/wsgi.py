"""WSGI app that runs the benchmark loops inside a real uWSGI worker.

``BENCH_SENDERS`` (comma separated: raw, um, mf, uc) says which libraries
this instance imports; each library installs its own ``mule_msg_hook``, so
the drain, latency and burst runs use one instance per library. Every
endpoint answers JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import sys
import time
from time import monotonic_ns, perf_counter_ns
from urllib.parse import parse_qs

import uwsgi

from . import tasks
from .mules import MAGIC

SENDERS = [s for s in os.environ.get("BENCH_SENDERS", "raw,um,mf,uc").split(",") if s]
if "um" in SENDERS:
    from . import um_tasks
if "mf" in SENDERS:
    from . import mf_tasks
if "uc" in SENDERS:
    from . import uc_tasks

PAYLOAD = tasks.PAYLOAD
UM_PREFIX = "bench.apps.um_tasks:um_"


def wire(proto: str, name: str, args: tuple) -> bytes:
    """The bytes each library puts on the queue for ``name(*args)``."""
    if proto == "raw":  # the unsigned envelope of uwsgi-mules 0.1, decoded by the raw loop
        return MAGIC + pickle.dumps((1, UM_PREFIX + name, args, {}), protocol=pickle.HIGHEST_PROTOCOL)
    if proto == "um":  # uwsgi-mules' signed envelope, to mule 1 (as um_tasks offloads)
        from uwsgi_mules import envelope
        from uwsgi_mules.backends.selection import current_backend

        return envelope.encode(current_backend().signer(), UM_PREFIX + name, args, {}, 1)
    if proto == "mf":  # uwsgidecorators.mulefunc
        return pickle.dumps({"service": "uwsgi_mulefunc", "func": "mf_" + name, "args": args, "kwargs": {}})
    if proto == "uc":  # uwsgiconf.runtime.mules
        return pickle.dumps(("ucfg_off", "uc_" + name, args, {}))
    raise ValueError(proto)


def send_until_queued(payload: bytes, timeout: float = 30.0, pause: float = 0.0002) -> int:
    """Raw send to mule 1, retrying a full queue; returns the number of refusals."""
    mm = uwsgi.mule_msg
    refused = 0
    deadline = time.monotonic() + timeout
    while not mm(payload, 1):
        refused += 1
        if time.monotonic() > deadline:
            raise TimeoutError("mule 1 queue stayed full")
        time.sleep(pause)
    return refused


# -- per-call cost ------------------------------------------------------------------


def _batch_raw(batch: int) -> tuple[int, int]:
    mm = uwsgi.mule_msg
    payload = wire("raw", "work", (0, PAYLOAD))
    refused = 0
    t0 = perf_counter_ns()
    for _ in range(batch):
        if not mm(payload, 1):
            refused += 1
    return perf_counter_ns() - t0, refused


def _batch_raw_pickle(batch: int) -> tuple[int, int]:
    mm = uwsgi.mule_msg
    dumps = pickle.dumps
    path = UM_PREFIX + "work"
    refused = 0
    t0 = perf_counter_ns()
    for i in range(batch):
        if not mm(MAGIC + dumps((1, path, (i, PAYLOAD), {}), 5), 1):
            refused += 1
    return perf_counter_ns() - t0, refused


def _batch_um(batch: int) -> tuple[int, int]:
    from uwsgi_mules import QueueFull

    f = um_tasks.um_work
    refused = 0
    t0 = perf_counter_ns()
    for i in range(batch):
        try:
            f(i, PAYLOAD)
        except QueueFull:  # the paused mule's queue is still full (percall sets send_timeout=0)
            refused += 1
    return perf_counter_ns() - t0, refused


def _batch_mf(batch: int) -> tuple[int, int]:
    f = mf_tasks.mf_work
    t0 = perf_counter_ns()
    for i in range(batch):
        f(i, PAYLOAD)  # returns None: refusals are invisible
    return perf_counter_ns() - t0, 0


def _batch_uc(batch: int) -> tuple[int, int]:
    f = uc_tasks.uc_work
    refused = 0
    t0 = perf_counter_ns()
    for i in range(batch):
        if not f(i, PAYLOAD):
            refused += 1
    return perf_counter_ns() - t0, refused


BATCHES = {"raw": _batch_raw, "raw_pickle": _batch_raw_pickle, "um": _batch_um, "mf": _batch_mf, "uc": _batch_uc}


def mule_pid() -> int:
    """Pid of mule 1: the master's child that is not a worker."""
    master = uwsgi.masterpid()
    workers = {w["pid"] for w in uwsgi.workers()}
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == master and int(entry) not in workers:
            children.append(int(entry))
    if len(children) != 1:
        raise RuntimeError(f"expected one mule, found {children}")
    return children[0]


@contextlib.contextmanager
def mule_paused(pid: int):
    """The mule does not read while paused (SIGSTOP), then drains again."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def percall(n: int, batch: int, gap_ms: float, senders: str) -> dict:
    """``n`` calls per sender in batches of ``batch`` (round-robin between
    senders). The mule is paused during a batch (nothing competes for the
    queue, and a batch fits in it) and drains between batches, so every
    timed call finds room."""
    names = senders.split(",")
    if "um" in names:  # the envelope the typed layer sends is the raw payload
        assert um_tasks.um_work.offloading.path == UM_PREFIX + "work"
    pid = mule_pid()
    if "um" in names:  # the mule is paused during a batch: waiting for room cannot help, count a refusal as raw does
        import uwsgi_mules

        uwsgi_mules.configure(send_timeout=0.0)
    for name in names:  # warm-up: imports, caches, topology discovery
        BATCHES[name](20)
        time.sleep(gap_ms / 1000)
    out = {name: {"batch_ns": [], "refused": 0} for name in names}
    for _ in range(max(1, n // batch)):
        for name in names:
            with mule_paused(pid):
                elapsed, refused = BATCHES[name](batch)
            out[name]["batch_ns"].append(elapsed)
            out[name]["refused"] += refused
            time.sleep(gap_ms / 1000)
    return out


# -- drain ------------------------------------------------------------------------------


def drain(proto: str, n: int, mode: str) -> dict:
    """How fast mule 1 executes calls.

    ``mode=prefill``: rounds of: pause the mule, fill its queue to the brim
    with the library's wire bytes for ``tick(round)``, resume it; the mule
    times each round (mule side only, no sender competing for the CPU).
    ``mode=stream``: one worker sends ``n`` calls of ``work`` as fast as it
    can while the mule runs (end to end): raw bytes retried on a full queue,
    or the typed ``um_work``.
    """
    refused = 0
    t0 = monotonic_ns()
    if mode == "prefill":
        pid = mule_pid()
        mm = uwsgi.mule_msg
        queued = 0
        rounds = 0
        while queued < n:
            payload = wire(proto, "tick", (rounds,))
            with mule_paused(pid):
                while mm(payload, 1):
                    queued += 1
            refused += 1
            rounds += 1
            time.sleep(0.01)
        return {"sent": queued, "rounds": rounds, "send_s": (monotonic_ns() - t0) / 1e9}
    if proto == "um":
        f = um_tasks.um_work
        for i in range(n):
            f(i, PAYLOAD)
    else:
        payload = wire(proto, "work", (0, PAYLOAD))
        for _ in range(n):
            refused += send_until_queued(payload)
    return {"sent": n, "refused_retried": refused, "send_s": (monotonic_ns() - t0) / 1e9}


# -- latency -----------------------------------------------------------------------------


def latency(sender: str, n: int, gap_us: int) -> dict:
    gap = gap_us / 1e6
    refused = 0
    if sender == "raw":
        mm = uwsgi.mule_msg
        dumps = pickle.dumps
        path = UM_PREFIX + "stamp"
        for _ in range(n):
            t0 = monotonic_ns()
            if not mm(MAGIC + dumps((1, path, (t0,), {}), 5), 1):
                refused += 1
            time.sleep(gap)
    else:
        f = {"um": lambda: um_tasks.um_stamp, "mf": lambda: mf_tasks.mf_stamp, "uc": lambda: uc_tasks.uc_stamp}[sender]()
        for _ in range(n):
            f(monotonic_ns())
            time.sleep(gap)
    return {"sent": n, "refused": refused}


# -- burst -------------------------------------------------------------------------------


def burst(sender: str, n: int) -> dict:
    """Send ``n`` calls as fast as the library lets us; count what the
    sender was told (False / exceptions)."""
    refused = errors = 0
    t0 = monotonic_ns()
    if sender == "raw":
        mm = uwsgi.mule_msg
        payload = wire("raw", "work", (0, PAYLOAD))
        for _ in range(n):
            if not mm(payload, 1):
                refused += 1
    elif sender == "um":
        from uwsgi_mules import QueueFull

        f = um_tasks.um_work
        for i in range(n):
            try:
                f(i, PAYLOAD)
            except QueueFull:
                errors += 1
    elif sender == "mf":
        f = mf_tasks.mf_work
        for i in range(n):
            f(i, PAYLOAD)
    elif sender == "uc":
        f = uc_tasks.uc_work
        for i in range(n):
            if not f(i, PAYLOAD):
                refused += 1
    else:
        raise ValueError(sender)
    return {
        "sent": n,
        "refused": refused,
        "errors": errors,
        "worker": uwsgi.worker_id(),
        "seconds": (monotonic_ns() - t0) / 1e9,
    }


# -- calls waiting for their time ------------------------------------------------------------


def wait(n: int, seconds: float) -> dict:
    """Offload ``n`` calls of ``um_tick(-1)`` due in ``seconds``: mule 1
    holds them in its waiting room while the next drains run."""
    f = um_tasks.um_tick
    for _ in range(n):
        f.offload_in(seconds, -1)
    return {"sent": n}


# -- control -------------------------------------------------------------------------------


def report(proto: str, path: str) -> dict:
    """Queue ``report(path)`` behind everything already queued (FIFO)."""
    refused = send_until_queued(wire(proto, "report", (path,)), pause=0.001)
    return {"queued": True, "refused_retried": refused}


def info() -> dict:
    data = {
        "worker": uwsgi.worker_id(),
        "uwsgi_version": uwsgi.version.decode() if isinstance(uwsgi.version, bytes) else str(uwsgi.version),
        "python": sys.version.split()[0],
        "senders": SENDERS,
        "hook": getattr(getattr(uwsgi, "mule_msg_hook", None), "__qualname__", None),
    }
    if "um" in SENDERS:
        from uwsgi_mules.backends.selection import current_backend

        backend = current_backend()
        topology = backend.topology()
        data["topology"] = None if topology is None else {"source": topology.source, "mules": topology.mule_count}
        data["plugin"] = getattr(backend, "plugin", None) is not None
        data["uwsgi_mules_file"] = sys.modules["uwsgi_mules"].__file__
    return data


HANDLERS = {
    "/percall": percall,
    "/drain": drain,
    "/latency": latency,
    "/burst": burst,
    "/report": report,
    "/info": info,
    "/wait": wait,
}
INTS = {"n", "batch", "gap_us"}
FLOATS = {"gap_ms", "seconds"}


def application(environ, start_response):
    handler = HANDLERS.get(environ.get("PATH_INFO", ""))
    if handler is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    params = {}
    for key, values in parse_qs(environ.get("QUERY_STRING", "")).items():
        value = values[-1]
        params[key] = int(value) if key in INTS else float(value) if key in FLOATS else value
    try:
        body = json.dumps(handler(**params)).encode()
        status = "200 OK"
    except Exception as exc:  # report to the driver instead of a bare 500
        body = json.dumps({"error": repr(exc)}).encode()
        status = "500 Internal Server Error"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
