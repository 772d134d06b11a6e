"""Mule program of the plugin tests (``--mule=.../gated_mule.py``).

The mule does not read until ``$MULES_TEST_DIR/gate<id>`` exists, so the
test can fill its queue; a ``take<id>`` file holding N makes it read just N
messages first (then ``taken<id>`` says how many it read so far). Then it drains its messages, reports each one to
the plugin (``received`` on the queue it was sent to, ``taken`` by this
mule) and writes how many it read to ``drained<id>``. At start it writes
what the bridge sees from inside a mule to ``mule<id>.json``.

Queue of each mule in the test layout: mule 1 gets messages on its own
queue, mule 2 through farm ``ff`` (the test sends nothing else to them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import uwsgi

from uwsgi_mules.backends.plugin_bridge import load_plugin

SOURCES = {1: 1, 2: b"ff"}


def _write(name: str, text: str) -> None:
    path = os.path.join(os.environ["MULES_TEST_DIR"], name)
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)  # readers never see a partial file


def main() -> None:
    mule_id = uwsgi.mule_id()
    bridge = load_plugin()
    source = SOURCES.get(mule_id, mule_id)
    report = {"bridge": bridge is not None}
    if bridge is not None:
        report["queue"] = dataclasses.asdict(bridge.queue_info(source))
    _write(f"mule{mule_id}.json", json.dumps(report))

    gate = os.path.join(os.environ["MULES_TEST_DIR"], f"gate{mule_id}")
    take = os.path.join(os.environ["MULES_TEST_DIR"], f"take{mule_id}")
    taken = 0
    while not os.path.exists(gate):
        if os.path.exists(take):  # read just that many messages, then wait again
            with open(take) as fh:
                wanted = int(fh.read() or "0")
            os.unlink(take)
            for _ in range(wanted):
                taken += bool(uwsgi.mule_get_msg(True, True, 65536, 1))
            _write(f"taken{mule_id}", str(taken))
        time.sleep(0.02)

    drained = 0
    while True:
        message = uwsgi.mule_get_msg(True, True, 65536, 1)
        if message:
            drained += 1
            if bridge is not None:
                bridge.count_received(source)
                bridge.count_received(mule_id=mule_id)
            if drained % 500:
                continue
        _write(f"drained{mule_id}", str(drained))


main()
