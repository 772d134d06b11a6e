"""The typed read model of one uWSGI instance: what the monitoring views show.

An :class:`InstanceSnapshot` is built by :func:`uwsgi_mules.monitor.snapshot.take_snapshot`
from the sources that exist (:mod:`uwsgi_mules.monitor.sources`). A value
that no source could give is ``None`` and the snapshot's ``unknown`` list
says why (for example the queue depth without the C plugin).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

#: the queue counters of the C plugin (and of metrics an application declares itself)
QUEUE_COUNTERS = ("depth_messages", "depth_bytes", "sent", "refused", "received", "taken")


@dataclass
class QueueView:
    """One queue: ``shared``, ``mule.N`` or ``farm.NAME``; a counter missing from ``values`` is unknown."""

    name: str
    values: dict[str, int] = field(default_factory=dict)
    #: per-second rates of the counters since the previous snapshot (empty on the first one)
    rates: dict[str, float] = field(default_factory=dict)

    @property
    def depth(self) -> int | None:
        return self.values.get("depth_messages")

    @property
    def queue(self) -> str:
        """The queue's name (the command line's older name for it)."""
        return self.name


@dataclass
class RunningTask:
    """The task a mule is running (from its in-flight record)."""

    path: str  #: ``module:qualname``, or why it cannot be named
    #: about when it started (epoch seconds): not before the mule's last heartbeat nor before a monitor saw it
    since: float | None = None
    seconds: float | None = None


@dataclass
class MuleView:
    """One programmed mule."""

    mule_id: int
    queue: QueueView | None = None
    running: RunningTask | None = None
    idle: bool | None = None  #: None: no in-flight record (a signal-only mule, or not started)
    last_beat: float | None = None  #: when the mule last wrote its heartbeat
    pid: int | None = None
    #: what the mule did with messages (ran, failed, rejected, unregistered, unhandled, dead), since it started
    counters: dict[str, int] | None = None
    rates: dict[str, float] = field(default_factory=dict)
    crashes: dict[str, int] | None = None  #: tasks that killed the mule (crashed, requeued, dead)
    waiting: int | None = None
    next_due: float | None = None


@dataclass
class FarmView:
    name: str
    queue: QueueView | None = None
    mules: list[int] | None = None  #: None: not known from outside the instance


@dataclass
class WaitingCall:
    path: str
    due: float


@dataclass
class WaitingView:
    """The calls one mule holds until their time."""

    mule_id: int
    count: int
    next_due: float | None
    calls: list[WaitingCall] = field(default_factory=list)  #: the earliest few
    problem: str = ""


@dataclass
class DeadView:
    """One dead task (given up after its last attempt). ``error`` and
    ``traceback`` are what the task raised: untrusted text, escape it."""

    id: str
    path: str
    call: str
    error: str
    traceback: str
    died_at: float
    attempts: int
    retries: int
    target: str


@dataclass
class TaskStats:
    """One task path over the mules' recent windows (durations in seconds)."""

    path: str
    runs: int
    failures: int
    window: int  #: how many durations the quantiles are taken over
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    dead: int = 0


@dataclass
class Sample:
    """One point of the history graph."""

    at: float
    depth: int | None
    ran_per_second: float | None


@dataclass
class ScheduleEntryView:
    """One periodic entry (:mod:`uwsgi_mules.periodic`), times in epoch seconds.

    ``outcome`` is what the scheduler saw of the last due time ("sent",
    "send failed: ...", "skipped (N missed)", ...): it can carry an
    exception's text, so it is untrusted text, escape it. ``sending`` is
    True while that run is being sent (still True after a crash during the send).
    """

    entry: str
    schedule: str  #: the schedule's fingerprint (``every:SECONDS`` or ``cron:EXPRESSION@TZ``)
    next_due: float | None  #: None: the schedule cannot be rebuilt here (e.g. no cron extra installed)
    last_due: float  #: the last due time taken care of
    sent_at: float | None
    outcome: str
    sending: bool = False


@dataclass
class InstanceSnapshot:
    taken_at: float
    address: str = ""
    reachable: bool = False
    error: str = ""
    version: str = ""
    master_pid: int | None = None
    runtime_dir: str = ""
    dead_dir: str = ""
    plugin: bool = False  #: the queue counters come from the C plugin (or declared metrics)
    unknown: list[str] = field(default_factory=list)  #: what is unknown, and why
    problems: list[str] = field(default_factory=list)  #: records that could not be read
    shared: QueueView | None = None
    mules: list[MuleView] = field(default_factory=list)
    farms: list[FarmView] = field(default_factory=list)
    other_queues: list[QueueView] = field(default_factory=list)
    waiting: list[WaitingView] = field(default_factory=list)
    dead: list[DeadView] = field(default_factory=list)  #: newest first
    tasks: list[TaskStats] = field(default_factory=list)
    #: the periodic entries (empty: no schedule); ``schedule_dir`` is where their state was read
    schedule: list[ScheduleEntryView] = field(default_factory=list)
    schedule_dir: str = ""
    history: list[Sample] = field(default_factory=list)

    @property
    def queues(self) -> list[QueueView]:
        """Every queue, in a stable order: shared, mules, farms, others."""
        found = [self.shared] if self.shared is not None else []
        found += [m.queue for m in self.mules if m.queue is not None]
        found += [f.queue for f in self.farms if f.queue is not None]
        return found + self.other_queues

    def mule(self, mule_id: int) -> MuleView | None:
        return next((m for m in self.mules if m.mule_id == mule_id), None)

    def to_dict(self, history: int = 300) -> dict[str, Any]:
        """Plain JSON-able data (the page's ``/api/snapshot``); the last
        ``history`` samples as ``[at, depth, ran_per_second]`` lists."""
        data = asdict(replace(self, history=[]))
        data["history"] = [[s.at, s.depth, s.ran_per_second] for s in self.history[-history:]] if history else []
        return data
