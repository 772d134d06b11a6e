"""An instance's runtime directory made by hand for the read-model tests:
the key, an in-flight record, a waiting file, a heartbeat and dead records,
written by the library's own writers."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from uwsgi_mules import envelope
from uwsgi_mules.envelope import Signer, mark_running
from uwsgi_mules.instance import load_or_create_key
from uwsgi_mules.mule.beat import MuleBeat, TaskTimer
from uwsgi_mules.mule.delivery.dead import DeadStore
from uwsgi_mules.mule.delivery.inflight import InflightRecord, record_path
from uwsgi_mules.mule.delivery.waiting import WaitingRoom, waiting_path

SCRIPT = "<script>document.title='pwned'</script>"


def make_instance(runtime: Path, *, dead: int = 2, waiting: int = 3) -> Signer:
    """A runtime directory with mule 1 running ``tests.t:slow`` and holding
    ``waiting`` calls, and ``dead`` dead tasks (one message carries ``SCRIPT``)."""
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.chmod(runtime, 0o700)
    signer = Signer(load_or_create_key(runtime))
    record = InflightRecord(4096, record_path(runtime, 1))
    mark_running(record.buffer, envelope.encode(signer, "tests.t:slow", (1,), {}))
    record.close()
    room = WaitingRoom(waiting_path(runtime, 1), signer=signer)
    for index in range(waiting):
        room.add(2_000_000_000.0 + index, 1, envelope.pack("tests.t:later", (index,), {}, 1), "tests.t:later")
    room.close()
    store = DeadStore(runtime, lambda line: None)
    for index in range(dead):
        store.add("tests.t:boom", f"tests.t:boom({index})", 1, 0, f"RuntimeError: {SCRIPT} \x1b[31mred",
                  "Traceback (most recent call last):\n  ...\nRuntimeError", 1,
                  envelope.pack("tests.t:boom", (index,), {}, 1))
    return signer


def write_beat(runtime: Path, ran: int = 5, durations: tuple[float, ...] = (0.1, 0.2, 0.3)) -> None:
    """Mule 1's heartbeat, with per-task timings."""
    counters = SimpleNamespace(ran=ran, failed=1, rejected=0, unregistered=0, unhandled=0, dead=2)
    dispatcher = SimpleNamespace(
        backend=SimpleNamespace(runtime_dir=lambda: runtime, getenv=lambda name: "1", log=print),
        counters=counters, deferral=SimpleNamespace(rooms={}), registry=SimpleNamespace(tasks={}),
    )
    beat = MuleBeat(dispatcher, 1)
    assert isinstance(beat.timer, TaskTimer)
    for seconds in durations:
        beat.timer.observe("tests.t:slow", seconds, True)
    beat.timer.observe("tests.t:slow", 0.05, False)
    beat(1_000.0)
