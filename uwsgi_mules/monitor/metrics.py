"""Prometheus metrics over the read model (needs ``pip install 'uwsgi-mules[monitor]'``).

:class:`SnapshotCollector` is a ``prometheus_client`` custom collector: each
scrape takes one snapshot and turns it into metric families; nothing is
counted in the instance for it. Names and labels follow Prometheus'
conventions: counters end in ``_total``, times are in seconds, labels are
``queue``, ``mule``, ``farm`` and ``task``. The ``task`` label is bounded:
the :data:`MAX_TASK_LABELS` busiest task paths keep their name, the rest are
summed under ``other``. The periodic entries have an ``entry`` label,
bounded the same way (:data:`MAX_ENTRY_LABELS` entries, in name order; the
rest are left out and counted in ``uwsgi_mules_periodic_entries``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .model import InstanceSnapshot, ScheduleEntryView, TaskStats

PREFIX = "uwsgi_mules"
#: task paths that keep their own ``task`` label value
MAX_TASK_LABELS = 20
OTHER = "other"
#: periodic entries that get their own ``entry`` label value
MAX_ENTRY_LABELS = 20
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_QUEUE_COUNTERS = {"sent": "messages sent to", "refused": "messages refused by (queue full)",
                   "received": "messages received by", "taken": "messages taken from"}
_MULE_COUNTERS = ("ran", "failed", "rejected", "unregistered", "unhandled", "dead")


class SnapshotCollector(Collector):
    """Collects from ``snapshot()`` at every scrape."""

    def __init__(self, snapshot: Callable[[], InstanceSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        up = GaugeMetricFamily(f"{PREFIX}_stats_up", "1 when the stats server answered")
        up.add_metric([], 1.0 if snap.reachable else 0.0)
        yield up
        yield from _queue_metrics(snap)
        yield from _mule_metrics(snap)
        dead = GaugeMetricFamily(f"{PREFIX}_dead_tasks", "dead tasks kept (given up after their last attempt)")
        dead.add_metric([], float(len(snap.dead)))
        yield dead
        yield from _task_metrics(snap.tasks)
        yield from _schedule_metrics(snap.schedule)


def _queue_metrics(snap: InstanceSnapshot) -> Iterator[Metric]:
    depth = GaugeMetricFamily(f"{PREFIX}_queue_depth_messages", "messages waiting in the queue", labels=["queue"])
    size = GaugeMetricFamily(f"{PREFIX}_queue_depth_bytes", "bytes waiting in the queue", labels=["queue"])
    counters = {name: CounterMetricFamily(f"{PREFIX}_queue_{name}", f"{what} the queue", labels=["queue"])
                for name, what in _QUEUE_COUNTERS.items()}
    for queue in snap.queues:
        if "depth_messages" in queue.values:
            depth.add_metric([queue.name], float(queue.values["depth_messages"]))
        if "depth_bytes" in queue.values:
            size.add_metric([queue.name], float(queue.values["depth_bytes"]))
        for name, family in counters.items():
            if name in queue.values:
                family.add_metric([queue.name], float(queue.values[name]))
    yield depth
    yield size
    yield from counters.values()


def _mule_metrics(snap: InstanceSnapshot) -> Iterator[Metric]:
    tasks = CounterMetricFamily(f"{PREFIX}_mule_messages", "what each mule did with messages since it started",
                                labels=["mule", "outcome"])
    busy = GaugeMetricFamily(f"{PREFIX}_mule_busy", "1 while the mule runs a task", labels=["mule"])
    running = GaugeMetricFamily(f"{PREFIX}_mule_running_seconds", "about how long the running task has run",
                                labels=["mule"])
    waiting = GaugeMetricFamily(f"{PREFIX}_mule_waiting_calls", "calls the mule holds until their time",
                                labels=["mule"])
    crashes = CounterMetricFamily(f"{PREFIX}_mule_crashed_tasks", "tasks found unfinished after the mule died",
                                  labels=["mule"])
    for mule in snap.mules:
        label = [str(mule.mule_id)]
        for name in _MULE_COUNTERS:
            if mule.counters is not None and name in mule.counters:
                tasks.add_metric([label[0], name], float(mule.counters[name]))
        if mule.idle is not None:
            busy.add_metric(label, 0.0 if mule.idle else 1.0)
        if mule.running is not None and mule.running.seconds is not None:
            running.add_metric(label, mule.running.seconds)
        if mule.waiting is not None:
            waiting.add_metric(label, float(mule.waiting))
        if mule.crashes is not None:
            crashes.add_metric(label, float(mule.crashes.get("crashed", 0)))
    yield from (tasks, busy, running, waiting, crashes)


def bounded_tasks(tasks: list[TaskStats], limit: int = MAX_TASK_LABELS) -> list[tuple[str, list[TaskStats]]]:
    """The ``limit`` busiest task paths each alone, the others together under ``other``."""
    ranked = sorted(tasks, key=lambda t: (-(t.runs + t.dead), t.path))
    kept = [(t.path, [t]) for t in ranked[:limit]]
    rest = ranked[limit:]
    return kept + ([(OTHER, rest)] if rest else [])


def _task_metrics(tasks: list[TaskStats]) -> Iterator[Metric]:
    runs = CounterMetricFamily(f"{PREFIX}_task_runs", "task runs (mules with UWSGIMULES_TASK_STATS=1)",
                               labels=["task"])
    failures = CounterMetricFamily(f"{PREFIX}_task_failures", "task runs that raised", labels=["task"])
    dead = GaugeMetricFamily(f"{PREFIX}_task_dead", "dead tasks kept, per task", labels=["task"])
    duration = GaugeMetricFamily(f"{PREFIX}_task_duration_seconds",
                                 "task duration quantiles over the mules' recent window", labels=["task", "quantile"])
    for label, group in bounded_tasks(tasks):
        runs.add_metric([label], float(sum(t.runs for t in group)))
        failures.add_metric([label], float(sum(t.failures for t in group)))
        dead.add_metric([label], float(sum(t.dead for t in group)))
        if len(group) == 1:
            for q, value in (("0.5", group[0].p50), ("0.9", group[0].p90), ("0.99", group[0].p99)):
                if value is not None:
                    duration.add_metric([label, q], value)
    yield from (runs, failures, dead, duration)


def _schedule_metrics(schedule: list[ScheduleEntryView]) -> Iterator[Metric]:
    count = GaugeMetricFamily(f"{PREFIX}_periodic_entries", "periodic entries with a recorded state")
    count.add_metric([], float(len(schedule)))
    next_due = GaugeMetricFamily(f"{PREFIX}_periodic_next_due_timestamp_seconds",
                                 "when the entry is next due (Unix time)", labels=["entry"])
    last_due = GaugeMetricFamily(f"{PREFIX}_periodic_last_due_timestamp_seconds",
                                 "the entry's last due time taken care of (Unix time)", labels=["entry"])
    sent = GaugeMetricFamily(f"{PREFIX}_periodic_last_sent_timestamp_seconds",
                             "when the entry's last run was sent (Unix time)", labels=["entry"])
    sending = GaugeMetricFamily(f"{PREFIX}_periodic_sending",
                                "1 while the entry's run is being sent (stays 1 after a crash during the send)",
                                labels=["entry"])
    for entry in sorted(schedule, key=lambda e: e.entry)[:MAX_ENTRY_LABELS]:
        label = [entry.entry]
        if entry.next_due is not None:
            next_due.add_metric(label, entry.next_due)
        last_due.add_metric(label, entry.last_due)
        if entry.sent_at is not None:
            sent.add_metric(label, entry.sent_at)
        sending.add_metric(label, 1.0 if entry.sending else 0.0)
    yield from (count, next_due, last_due, sent, sending)


def exposition(snapshot: Callable[[], InstanceSnapshot]) -> bytes:
    """The text exposition of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
