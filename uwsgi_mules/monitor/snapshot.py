"""Build an :class:`~uwsgi_mules.monitor.model.InstanceSnapshot` from the sources that exist."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..envelope import Signer
from ..instance import BACKLOG_DIR_ENV, RUNTIME_DIR_ENV, default_runtime_dir
from .model import FarmView, InstanceSnapshot, MuleView, QueueView, RunningTask, TaskStats
from .sources.dead_records import read_dead
from .sources.instance_key import instance_signer
from .sources.mule_files import RecordState, mule_ids, read_heartbeat, read_record
from .sources.queue_metrics import missing_reason, queue_views
from .sources.schedule import read_schedule
from .sources.stats_address import StatsError, read_stats
from .sources.waiting_files import read_waiting
from .tracker import Tracker

NO_PLUGIN = "queue depth and sent/refused/received counters: {why}"
NO_TIMINGS = ("per-task runs, failures and durations: the mules run without UWSGIMULES_TASK_STATS=1 "
              "(dead tasks per task are counted)")


@dataclass
class InstanceSources:
    """Where to read an instance: its stats server, its runtime directory and
    its backlog directory (dead tasks live under the backlog directory when
    the instance has one, else under the runtime directory)."""

    stats_address: str | None = None
    runtime_dir: Path | None = None
    backlog_dir: Path | None = None
    timeout: float = 2.0

    @classmethod
    def from_environment(cls, stats_address: str | None = None) -> InstanceSources:
        """From ``UWSGIMULES_RUNTIME_DIR`` / ``UWSGIMULES_BACKLOG_DIR`` (a page
        mounted in the instance: the runtime directory of the current backend)."""
        runtime = os.environ.get(RUNTIME_DIR_ENV)
        backlog = os.environ.get(BACKLOG_DIR_ENV)
        found = Path(runtime) if runtime else _current_runtime_dir()
        return cls(stats_address, found, Path(backlog) if backlog else None)

    @classmethod
    def from_variables(cls, stats_address: str | None = None, timeout: float = 2.0) -> InstanceSources:
        """From ``UWSGIMULES_RUNTIME_DIR`` / ``UWSGIMULES_BACKLOG_DIR`` when set, else
        None (``uwsgi-mules stats``: the runtime directory is then the master's default one)."""
        runtime = os.environ.get(RUNTIME_DIR_ENV)
        backlog = os.environ.get(BACKLOG_DIR_ENV)
        return cls(stats_address, Path(runtime) if runtime else None, Path(backlog) if backlog else None, timeout)

    def dead_base(self) -> Path | None:
        return self.backlog_dir or self.runtime_dir


def _current_runtime_dir() -> Path | None:
    try:
        from ..backends.selection import current_backend

        found = current_backend().runtime_dir()
    except Exception:  # noqa: BLE001 - outside uWSGI: no backend, no directory
        return None
    return Path(found) if found is not None else None


def take_snapshot(sources: InstanceSources, tracker: Tracker | None = None,
                  stats: dict[str, Any] | None = None) -> InstanceSnapshot:
    """Read every source once; what a source cannot tell is listed in
    ``unknown``. ``stats``: the stats server's JSON when the caller read it already."""
    snap = InstanceSnapshot(taken_at=time.time(), address=sources.stats_address or "")
    runtime_dir = _read_server(snap, sources, stats)
    runtime_dir = sources.runtime_dir or runtime_dir
    heads: dict[int, bytes] = {}
    if runtime_dir is not None and runtime_dir.is_dir():
        snap.runtime_dir = str(runtime_dir)
        heads = _read_mules(snap, runtime_dir)
    elif runtime_dir is not None:
        snap.unknown.append(f"running tasks, waiting calls, mule counters: no runtime directory {runtime_dir}")
    else:
        snap.unknown.append("running tasks, waiting calls, mule counters: the runtime directory is not known")
    base = sources.backlog_dir or (Path(snap.runtime_dir) if snap.runtime_dir else None)
    if base is not None:
        snap.dead_dir = str(base / "dead")
        snap.dead = read_dead(base, snap.problems)
        snap.schedule = read_schedule(base, snap.taken_at, snap.problems)
        snap.schedule_dir = str(base) if snap.schedule else ""
    snap.tasks = _task_stats(snap)
    if tracker is not None:
        tracker.follow(snap, heads)
    return snap


def _read_server(snap: InstanceSnapshot, sources: InstanceSources, data: dict[str, Any] | None) -> Path | None:
    """The stats server's part; returns the default runtime directory of its master."""
    if data is None and not sources.stats_address:
        snap.unknown.append(NO_PLUGIN.format(why="no stats server address given"))
        return None
    try:
        data = data if data is not None else read_stats(sources.stats_address or "", timeout=sources.timeout).data
    except StatsError as exc:
        snap.error = str(exc)
        snap.unknown.append(NO_PLUGIN.format(why="the stats server cannot be read"))
        return None
    snap.reachable = True
    snap.version = str(data.get("version", ""))
    pid = data.get("pid")
    snap.master_pid = int(pid) if isinstance(pid, int) else None
    queues = queue_views(data)
    snap.plugin = bool(queues)
    if not queues:
        snap.unknown.append(NO_PLUGIN.format(why=missing_reason(data)))
    for queue in queues:
        kind, _, name = queue.name.partition(".")
        if kind == "shared":
            snap.shared = queue
        elif kind == "mule" and name.isdigit():
            snap.mules.append(MuleView(int(name), queue=queue))
        elif kind == "farm":
            snap.farms.append(FarmView(name, queue))
        else:
            snap.other_queues.append(queue)
    if snap.master_pid is None:
        return None
    guess = default_runtime_dir(snap.master_pid)
    return guess if guess.is_dir() else None


def _read_mules(snap: InstanceSnapshot, runtime_dir: Path) -> dict[int, bytes]:
    """Each mule's files; returns the recorded bytes of each running task."""
    signer: Signer | None = None
    try:
        signer = instance_signer(runtime_dir)
    except OSError as exc:
        snap.problems.append(f"the instance key cannot be read ({exc}): running tasks and waiting calls unknown")
    for mule_id in mule_ids(runtime_dir):
        if snap.mule(mule_id) is None:
            snap.mules.append(MuleView(mule_id))
    snap.mules.sort(key=lambda m: m.mule_id)
    heads: dict[int, bytes] = {}
    for mule in snap.mules:
        record = read_record(runtime_dir / f"mule{mule.mule_id}.inflight", signer)
        if record is not None:
            _apply_record(mule, record, heads)
        _apply_beat(mule, read_heartbeat(runtime_dir, mule.mule_id))
        if signer is not None:
            waiting = read_waiting(runtime_dir, mule.mule_id, signer)
            mule.waiting, mule.next_due = 0, None  # the file is the truth: none or empty, nothing waits
            if waiting is not None:
                snap.waiting.append(waiting)
                mule.waiting, mule.next_due = waiting.count, waiting.next_due
                if waiting.problem:
                    snap.problems.append(waiting.problem)
    return heads


def _apply_record(mule: MuleView, record: RecordState, heads: dict[int, bytes]) -> None:
    mule.idle = not record.running
    mule.crashes = record.crashes
    if record.running:
        mule.running = RunningTask(record.path)
        heads[mule.mule_id] = record.head


def _apply_beat(mule: MuleView, beat: dict[str, Any] | None) -> None:
    if beat is None:
        return
    mule.last_beat = float(beat.get("at", 0.0)) or None
    mule.pid = beat.get("pid")
    counters = beat.get("counters")
    if isinstance(counters, dict):
        mule.counters = {str(k): int(v) for k, v in counters.items()}
    if mule.waiting is None:
        mule.waiting = int(beat.get("waiting", 0))
        mule.next_due = beat.get("next_due")


def _task_stats(snap: InstanceSnapshot) -> list[TaskStats]:
    """Per task path: runs, failures and durations from the mules' heartbeats, dead tasks from the records."""
    runs: dict[str, list[int]] = {}
    durations: dict[str, list[float]] = {}
    timed = False
    for beat in _beats(snap):
        tasks = beat.get("tasks")
        if not isinstance(tasks, dict):
            continue
        timed = True
        for path, entry in tasks.items():
            counts = runs.setdefault(path, [0, 0])
            counts[0] += int(entry.get("runs", 0))
            counts[1] += int(entry.get("failures", 0))
            durations.setdefault(path, []).extend(float(d) for d in entry.get("durations", ()))
    if not timed:
        snap.unknown.append(NO_TIMINGS)
    dead: dict[str, int] = {}
    for task in snap.dead:
        dead[task.path] = dead.get(task.path, 0) + 1
    found = []
    for path in sorted(set(runs) | set(dead)):
        window = sorted(durations.get(path, ()))
        count, failures = runs.get(path, [0, 0])
        found.append(TaskStats(path, count, failures, len(window), quantile(window, 0.5), quantile(window, 0.9),
                               quantile(window, 0.99), window[-1] if window else None, dead.get(path, 0)))
    return found


def _beats(snap: InstanceSnapshot) -> list[dict[str, Any]]:
    if not snap.runtime_dir:
        return []
    found = [read_heartbeat(Path(snap.runtime_dir), mule.mule_id) for mule in snap.mules]
    return [beat for beat in found if beat is not None]


def quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


__all__ = ["InstanceSources", "QueueView", "quantile", "take_snapshot"]
