"""The work every sender offloads, and the mule-side bookkeeping.

Each mule process keeps its own counters (module globals): ``work`` counts
executions and remembers the first and last time, ``stamp`` records the
worker-to-mule latency, ``report`` writes everything to a JSON file and
resets. Every library under test ends up calling these same functions.
"""

from __future__ import annotations

import json
import os
from time import monotonic_ns

COUNT = 0
FIRST = 0
LAST = 0
LATENCIES: list[int] = []
#: drain rounds: round -> [first_ns, last_ns, count]
ROUNDS: dict[int, list[int]] = {}

#: the arguments of every benchmarked call: work(i, PAYLOAD)
PAYLOAD = "order-1234567890"


def work(i: int, s: str) -> None:
    global COUNT, FIRST, LAST
    now = monotonic_ns()
    if not COUNT:
        FIRST = now
    COUNT += 1
    LAST = now


def tick(r: int) -> None:
    now = monotonic_ns()
    entry = ROUNDS.get(r)
    if entry is None:
        ROUNDS[r] = [now, now, 1]
    else:
        entry[1] = now
        entry[2] += 1


def stamp(t0: int) -> None:
    LATENCIES.append(monotonic_ns() - t0)


def report(path: str) -> None:
    global COUNT, FIRST, LAST
    data = {"count": COUNT, "first_ns": FIRST, "last_ns": LAST, "latencies_ns": LATENCIES[:], "rounds": ROUNDS.copy()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
    COUNT = FIRST = LAST = 0
    LATENCIES.clear()
    ROUNDS.clear()
