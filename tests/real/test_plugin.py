"""The C plugin (``plugin/``) built and loaded into a real uWSGI.

The plugin is built with ``uwsgi --build-plugin`` into a temp dir (or taken
from ``UWSGIMULES_TEST_PLUGIN`` when a build step made it already) and
loaded with ``--plugin``. Layout of the test server:

- mule 1: ``gated_mule.py`` (does not read until the test opens its gate)
- mule 2: ``gated_mule.py``, the only member of farm ``ff``
- mule 3: signal-only (drains the shared queue)

Runs with the compiled uWSGI binary. pyuwsgi cannot build or load plugins
(see ``plugin/README.md``), so there the module is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import UwsgiServer, free_port

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

APPS = Path(__file__).resolve().parent / "plugin_apps"
SIZE = 100  # bytes per message in fill tests


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached after {timeout}s")


class PluginServer(UwsgiServer):
    """UwsgiServer plus JSON requests, stats and files of the workdir."""

    def __init__(self, workdir: Path, plugin: Path) -> None:
        self.stats_port = free_port()
        self.metrics_dir = workdir / "metrics"
        self.metrics_dir.mkdir(parents=True)
        mule = str(APPS / "gated_mule.py")
        args = [
            "--plugin", str(plugin),
            "--wsgi-file", str(APPS / "app.py"),
            "--processes", "2",
            "--mule=" + mule,
            "--mule=" + mule,
            "--mule",
            "--farm", "ff:2",
            "--enable-metrics",
            "--metrics-dir", str(self.metrics_dir),
            "--stats", f"127.0.0.1:{self.stats_port}",
            "--stats-http",
        ]
        super().__init__(workdir, args)

    def call(self, action: str, http_timeout: float = 60.0, **params: object) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        body = json.loads(self.get(f"/{action}?{query}", timeout=http_timeout))
        assert body["ok"], body
        return body

    def stats_metrics(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.stats_port}/"
        with urllib.request.urlopen(url, timeout=10) as response:
            data = json.loads(response.read())
        return {k: v["value"] for k, v in data.get("metrics", {}).items() if k.startswith("mules_plugin.")}

    def metric_file(self, name: str) -> int | None:
        path = self.metrics_dir / name
        if not path.exists():
            return None
        text = path.read_bytes().replace(b"\0", b"").strip()
        return int(text) if text else 0  # uWSGI writes a value only once it changed from 0

    def read(self, name: str) -> str | None:
        try:
            return (self.workdir / name).read_text()
        except FileNotFoundError:
            return None

    def drained(self, mule_id: int) -> int:
        return int(self.read(f"drained{mule_id}") or -1)

    def open_gate(self, mule_id: int) -> None:
        (self.workdir / f"gate{mule_id}").touch()


@pytest.fixture
def server(plugin_so: Path, tmp_path: Path) -> Iterator[PluginServer]:
    with PluginServer(tmp_path / "work", plugin_so) as instance:
        yield instance


def test_plugin_is_loaded_and_reports_exact_layout(server: PluginServer) -> None:
    server.wait_for_log("mules_plugin: loaded (abi 2, 3 mule(s), 1 farm(s))")
    server.wait_for_log("mules_plugin: ready")
    info = server.call("info")
    assert info["bridge"] is True and info["abi"] == 2
    mule = str(APPS / "gated_mule.py")
    assert info["mules"] == [mule, mule, None]
    assert info["farms"] == [["ff", [2]]]
    assert info["msg_size"] is None
    assert info["socket_buffer"] > 0
    assert info["backend_topology_source"] == "mules_plugin"
    # the bridge works after fork in mules too
    for mule_id in (1, 2):
        report = json.loads(_wait(lambda: server.read(f"mule{mule_id}.json"), 20, f"mule{mule_id}.json"))
        assert report["bridge"] is True
        assert report["queue"]["depth_bytes"] == 0


def test_depth_counters_send_wait_and_metrics(server: PluginServer) -> None:
    server.wait_for_log("mules_plugin: ready")
    _wait(lambda: server.read("mule1.json"), 20, "mule 1 started")

    # fill mule 1's queue with raw uwsgi.mule_msg: depth is exact, counters
    # stay 0 (raw sends bypass the plugin)
    filled = server.call("fill_raw", target=1, size=SIZE)["accepted"]
    assert 100 < filled < 1000
    q = server.call("queue", target=1)
    assert q["depth_messages"] == filled
    assert q["depth_bytes"] == filled * SIZE
    assert q["mem_used"] > 0.9 * q["mem_limit"]
    assert (q["sent"], q["refused"], q["received"]) == (0, 0, 0)

    # nothing drains: send_wait times out within bounds and is counted
    result = server.call("send_wait", target=1, size=SIZE, timeout=0.5)
    assert result["result"] is False
    assert 0.45 <= result["elapsed"] < 3.0
    assert server.call("queue", target=1)["refused"] == 1

    # metrics: files and the stats server agree with the bridge
    def metrics_agree() -> dict[str, int] | None:
        metrics = server.stats_metrics()
        if metrics.get("mules_plugin.mule.1.depth_messages") != filled:
            return None
        return metrics

    metrics = _wait(metrics_agree, 10, "stats metrics")
    assert metrics["mules_plugin.mule.1.depth_bytes"] == filled * SIZE
    assert metrics["mules_plugin.mule.1.refused"] == 1
    assert {"mules_plugin.shared.depth_bytes", "mules_plugin.farm.ff.depth_messages"} <= set(metrics)
    _wait(lambda: server.metric_file("mules_plugin.mule.1.depth_messages") == filled, 10, "metric file")
    assert server.metric_file("mules_plugin.mule.1.depth_bytes") == filled * SIZE
    assert server.metric_file("mules_plugin.mule.1.refused") == 1

    # send_wait waits, then succeeds once the mule starts draining
    outcome: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: outcome.update(server.call("send_wait", target=1, size=SIZE, timeout=20)),
        daemon=True,
    )
    waiter.start()
    time.sleep(0.7)
    assert waiter.is_alive(), "send_wait returned before the queue had room"
    server.open_gate(1)
    waiter.join(30)
    assert not waiter.is_alive()
    assert outcome["result"] is True
    assert 0.6 <= outcome["elapsed"] < 20

    # everything arrives; counters agree (received/taken reported by the mule)
    _wait(lambda: server.drained(1) == filled + 1, 20, "mule 1 drained")
    q = server.call("queue", target=1)
    assert (q["sent"], q["refused"]) == (1, 1)
    assert q["received"] == q["taken"] == filled + 1
    assert (q["depth_bytes"], q["depth_messages"]) == (0, 0)


def test_farm_queue_with_plugin_sends(server: PluginServer) -> None:
    server.wait_for_log("mules_plugin: ready")
    _wait(lambda: server.read("mule2.json"), 20, "mule 2 started")
    accepted = server.call("fill_plugin", target="farm:ff", size=SIZE)["accepted"]
    assert 100 < accepted < 1000
    q = server.call("queue", target="farm:ff")
    assert (q["sent"], q["refused"]) == (accepted, 1)
    assert (q["depth_messages"], q["depth_bytes"]) == (accepted, accepted * SIZE)
    # a mule queue nobody sent to stays empty
    assert server.call("queue", target=2)["depth_messages"] == 0

    server.open_gate(2)
    _wait(lambda: server.drained(2) == accepted, 20, "mule 2 drained")
    stats = server.call("stats")
    assert set(stats) >= {"shared", "mule1", "mule2", "mule3", "farm:ff"}
    farm = stats["farm:ff"]
    assert (farm["sent"], farm["refused"], farm["received"]) == (accepted, 1, accepted)
    assert farm["depth_messages"] == 0
    _wait(lambda: server.stats_metrics().get("mules_plugin.farm.ff.received") == accepted, 10, "farm metric")


def test_overhead_is_measured(server: PluginServer) -> None:
    """Not a benchmark gate: records per-call costs in the test output."""
    server.wait_for_log("mules_plugin: ready")
    _wait(lambda: server.read("mule2.json"), 20, "mule 2 started")
    count = 200  # below the ~278 small messages a queue holds
    costs = server.call("bench", count=count)
    print("per-call seconds:", {k: v for k, v in costs.items() if k != "ok"})
    assert costs["accepted"] == {"ctypes_send": count, "send_wait": count, "mule_msg": count}
    assert costs["ctypes_noop"] < 1e-3
    assert costs["send_wait"] < 5e-3


@pytest.mark.parametrize("timeout", ["inf", "3e6", "1e300"])
def test_send_wait_with_an_endless_timeout_takes_the_first_room(server: PluginServer, timeout: str) -> None:
    """A timeout of inf or over ~2.1e6 s (INT_MAX ms) waits, retrying every
    slice: once the mule reads one message the send goes in, long before
    the queue is 3/4 free (when poll() alone would report room)."""
    server.wait_for_log("mules_plugin: ready")
    _wait(lambda: server.read("mule1.json"), 20, "mule 1 started")
    filled = server.call("fill_raw", target=1, size=SIZE)["accepted"]
    outcome: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: outcome.update(server.call("send_wait", target=1, size=SIZE, timeout=timeout)),
        daemon=True,
    )
    waiter.start()
    time.sleep(0.7)
    assert waiter.is_alive(), f"send_wait(timeout={timeout}) returned while the queue was full: {outcome}"
    (server.workdir / "take1").write_text("1")  # room for exactly one message
    _wait(lambda: server.read("taken1") == "1", 20, "mule 1 took one message")
    waiter.join(10)
    assert not waiter.is_alive(), f"send_wait(timeout={timeout}) missed the room of one message"
    assert outcome["result"] is True
    q = server.call("queue", target=1)
    assert (q["depth_messages"], q["sent"], q["refused"]) == (filled, 1, 0)
    server.open_gate(1)  # let the mule drain so the server stops promptly
