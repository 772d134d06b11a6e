"""What one snapshot alone cannot tell: rates, the history graph, since when a task runs.

A :class:`Tracker` lives as long as the process that watches the instance
(the page, the metrics endpoint, ``uwsgi-mules stats --watch``) and is given
every snapshot in turn: it sets the per-second rates of the counters since
the previous snapshot, keeps a bounded history (depth and tasks run per
second) and remembers when it first saw each running task.
"""

from __future__ import annotations

from collections import deque

from .model import InstanceSnapshot, QueueView, Sample

#: history points kept (one per snapshot: 10 minutes at one a second)
HISTORY = 600


class Tracker:
    def __init__(self, history: int = HISTORY) -> None:
        self._queues: dict[str, tuple[float, dict[str, int]]] = {}
        self._mules: dict[int, tuple[float, dict[str, int]]] = {}
        #: per mule: the recorded bytes last seen (b"": idle) and since when the task runs at most
        self._running: dict[int, tuple[bytes, float]] = {}
        self.history: deque[Sample] = deque(maxlen=history)

    def follow(self, snapshot: InstanceSnapshot, heads: dict[int, bytes]) -> None:
        """Set ``snapshot``'s rates, running times and history; ``heads``:
        the recorded bytes of each mule's running task."""
        now = snapshot.taken_at
        for queue in snapshot.queues:
            queue.rates = self._rates(self._queues, queue.name, now, queue.values)
        ran = 0.0
        known = False
        for mule in snapshot.mules:
            if mule.counters is not None:
                mule.rates = self._rates(self._mules, mule.mule_id, now, mule.counters)
                if "ran" in mule.rates:
                    ran += mule.rates["ran"] + mule.rates.get("failed", 0.0)
                    known = True
            self._running_since(mule.mule_id, heads.get(mule.mule_id), mule, now)
        depths = [q.depth for q in snapshot.queues if q.depth is not None]
        self.history.append(Sample(now, sum(depths) if depths else None, round(ran, 3) if known else None))
        snapshot.history = list(self.history)

    @staticmethod
    def _rates(previous: dict, key: object, now: float, values: dict[str, int]) -> dict[str, float]:
        before = previous.get(key)
        previous[key] = (now, dict(values))
        if before is None or now <= before[0]:
            return {}
        elapsed = now - before[0]
        return {name: max(0.0, (value - before[1].get(name, value)) / elapsed)
                for name, value in values.items() if name != "depth_messages" and name != "depth_bytes"}

    def _running_since(self, mule_id: int, head: bytes | None, mule: object, now: float) -> None:
        """The task started after the mule's last heartbeat and after this
        tracker last saw the mule doing something else: the later of the two."""
        running = getattr(mule, "running", None)
        seen = self._running.get(mule_id)
        if head is None or running is None:
            self._running[mule_id] = (b"", now)
            return
        if seen is None or seen[0] != head:
            earliest = seen[1] if seen is not None else None  # the previous look saw something else
            beat = getattr(mule, "last_beat", None)
            bounds = [b for b in (earliest, beat) if b is not None and b <= now]
            seen = self._running[mule_id] = (head, max(bounds) if bounds else now)
        running.since = seen[1]
        running.seconds = round(max(0.0, now - seen[1]), 3)


def queue_total(queues: list[QueueView], counter: str) -> int | None:
    values = [q.values[counter] for q in queues if counter in q.values]
    return sum(values) if values else None
