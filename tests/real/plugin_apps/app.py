"""WSGI app of the plugin tests: each path performs one action in a worker
and answers JSON (also written to ``$MULES_TEST_DIR/<action>.json``).

Query parameters: ``target`` (``0`` shared, ``N`` mule, ``farm:NAME``),
``size`` (message bytes), ``timeout`` (seconds), ``count``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import uwsgi

from uwsgi_mules.backends.plugin_bridge import PluginBridge, load_plugin

Target = int | bytes


def _target(value: str) -> Target:
    return value[5:].encode() if value.startswith("farm:") else int(value)


def _bridge() -> PluginBridge:
    bridge = load_plugin()
    if bridge is None:
        raise RuntimeError("mules plugin not found in this worker")
    return bridge


def info(q: dict[str, str]) -> dict[str, Any]:
    bridge = load_plugin()
    if bridge is None:
        return {"bridge": False}
    topology = bridge.topology()
    return {
        "bridge": True,
        "path": bridge.path,
        "abi": bridge.abi_version,
        "mules": [m.program for m in topology.mules],
        "farms": [[f.name, list(f.mules)] for f in topology.farms],
        "msg_size": topology.msg_size,
        "socket_buffer": bridge.socket_buffer(),
        "worker_id": uwsgi.worker_id(),
        # the real backend picks the plugin up for its layout
        "backend_topology_source": _backend_topology_source(),
    }


def _backend_topology_source() -> str | None:
    from uwsgi_mules.backends.real import RealBackend

    topology = RealBackend(uwsgi).topology()
    return topology.source if topology is not None else None


def queue(q: dict[str, str]) -> dict[str, Any]:
    return dataclasses.asdict(_bridge().queue_info(_target(q["target"])))


def fill_raw(q: dict[str, str]) -> dict[str, Any]:
    """Fill a queue with ``uwsgi.mule_msg`` until it refuses (bounded)."""
    target, message = _target(q["target"]), b"x" * int(q["size"])
    accepted = 0
    while accepted < 100_000 and uwsgi.mule_msg(message, target):
        accepted += 1
    return {"accepted": accepted}


def send_plugin(q: dict[str, str]) -> dict[str, Any]:
    """``count`` plugin sends with ``timeout``; counts True and False."""
    bridge, target = _bridge(), _target(q["target"])
    message, timeout = b"p" * int(q["size"]), float(q.get("timeout", "0"))
    results = [bridge.send_wait(message, target, timeout) for _ in range(int(q["count"]))]
    return {"true": results.count(True), "false": results.count(False)}


def fill_plugin(q: dict[str, str]) -> dict[str, Any]:
    """Fill a queue with plugin sends (timeout 0) until one is refused."""
    bridge, target, message = _bridge(), _target(q["target"]), b"p" * int(q["size"])
    accepted = 0
    while accepted < 100_000 and bridge.send_wait(message, target, 0):
        accepted += 1
    return {"accepted": accepted}


def send_wait(q: dict[str, str]) -> dict[str, Any]:
    bridge = _bridge()
    start = time.monotonic()
    result = bridge.send_wait(b"w" * int(q["size"]), _target(q["target"]), float(q["timeout"]))
    return {"result": result, "elapsed": time.monotonic() - start}


def stats(q: dict[str, str]) -> dict[str, Any]:
    return {key: dataclasses.asdict(c) for key, c in _bridge().stats().queues.items()}


def bench(q: dict[str, str]) -> dict[str, Any]:
    """Per-call cost of the bridge next to the raw uwsgi module (seconds).

    Each kind of send goes to its own empty queue whose mule does not read
    (``count`` must stay below the queue capacity), so every call is an
    accepted send and no call waits.
    """
    bridge, count = _bridge(), int(q["count"])
    message = b"b" * 64
    lib = bridge._lib  # raw ctypes, to separate the ctypes cost from the bridge's Python
    outcomes: dict[str, list[object]] = {"ctypes_send": [], "send_wait": [], "mule_msg": []}

    def per_call(func: Callable[[], object], n: int = count) -> float:
        start = time.perf_counter()
        for _ in range(n):
            func()
        return (time.perf_counter() - start) / n

    farm_kind, farm_id = bridge._resolve(b"ff", strict=True)
    result: dict[str, Any] = {
        "ctypes_noop": per_call(lib.mules_plugin_ready, 20000),
        "ctypes_send": per_call(lambda: outcomes["ctypes_send"].append(
            lib.mules_plugin_send_wait(1, 1, message, len(message), 1.0))),
        "send_wait": per_call(lambda: outcomes["send_wait"].append(bridge.send_wait(message, b"ff", 1.0))),
        "mule_msg": per_call(lambda: outcomes["mule_msg"].append(uwsgi.mule_msg(message, 2))),
        # walks the ``count`` messages waiting in mule 1's queue
        "queue_info": per_call(lambda: bridge.queue_info(1), 200),
        "queue_info_empty": per_call(lambda: bridge.queue_info(0), 200),
    }
    result["accepted"] = {name: sum(1 for r in values if r in (True, 1)) for name, values in outcomes.items()}
    return result


ACTIONS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "info": info,
    "queue": queue,
    "fill_raw": fill_raw,
    "fill_plugin": fill_plugin,
    "send_plugin": send_plugin,
    "send_wait": send_wait,
    "stats": stats,
    "bench": bench,
}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    name = environ["PATH_INFO"].strip("/")
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        body = {"ok": True, **ACTIONS[name](q)}
    except Exception as exc:  # reported to the test, never swallowed
        body = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    data = json.dumps(body).encode()
    with open(os.path.join(os.environ["MULES_TEST_DIR"], f"{name}.json"), "wb") as fh:
        fh.write(data)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]
