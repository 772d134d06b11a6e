"""``uwsgi-mules stats``: the instance's read model as text.

The figures come from :mod:`uwsgi_mules.monitor` (the same model as the web
page and ``/metrics``): the queue counters of the C plugin
(``--plugin mules_plugin.so --enable-metrics --stats ADDRESS``) or of
metrics the application declares itself (the demo does, since pyuwsgi
cannot load the plugin), and, given the instance's runtime directory, what
each mule is running, its waiting calls and the dead tasks.
"""

from __future__ import annotations

import datetime
from typing import Any

from ..monitor.model import QUEUE_COUNTERS, InstanceSnapshot, QueueView
from ..monitor.sources.queue_metrics import missing_reason, queue_views

#: a row of the queue table (a queue of the read model)
QueueRow = QueueView
COLUMNS = QUEUE_COUNTERS


def queue_rows(stats: dict[str, Any]) -> list[QueueView]:
    """One row per queue found in the stats server's metrics, in a stable order."""
    return queue_views(stats)


def missing_metrics_reason(stats: dict[str, Any]) -> str:
    """Why ``stats`` has no uwsgi-mules queue metrics (for a stats reading with no rows)."""
    return missing_reason(stats)


def render_table(rows: list[QueueView]) -> str:
    """A fixed-width table of the rows ("-" where a value is unknown; columns
    that no row has are left out)."""
    columns = [c for c in COLUMNS if any(c in row.values for row in rows)]
    header = f"{'queue':<20}" + "".join(f"{c:>16}" for c in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = "".join(f"{row.values[c]:>16}" if c in row.values else f"{'-':>16}" for c in columns)
        lines.append(f"{row.name:<20}{cells}")
    return "\n".join(lines)


def render_snapshot(snapshot: InstanceSnapshot) -> str:
    """The queue table, then one line per mule known from its files, the dead
    tasks and what is unknown (printable text: what a task wrote is shown with ``repr``)."""
    lines = [render_table(snapshot.queues)] if snapshot.queues else []
    for mule in snapshot.mules:
        if mule.idle is None and mule.counters is None and mule.waiting is None:
            continue
        doing = "idle" if mule.idle else (f"running {mule.running.path!r}" if mule.running else "state unknown")
        if mule.running is not None and mule.running.seconds is not None:
            doing += f" for about {mule.running.seconds:.0f} s"
        ran = f", ran {mule.counters.get('ran', 0)} failed {mule.counters.get('failed', 0)}" if mule.counters else ""
        waiting = f", {mule.waiting} waiting" if mule.waiting else ""
        lines.append(f"mule {mule.mule_id}: {doing}{ran}{waiting}")
    if snapshot.runtime_dir or snapshot.dead:
        newest = ""
        if snapshot.dead:
            task = snapshot.dead[0]
            when = datetime.datetime.fromtimestamp(task.died_at).strftime("%H:%M:%S")
            newest = f" (newest {task.id} at {when}: {task.path} -- {task.error[:120]!r})"
        lines.append(f"dead tasks: {len(snapshot.dead)}{newest}")
    lines += render_schedule(snapshot)
    lines += [f"unknown: {why}" for why in snapshot.unknown]
    return "\n".join(lines)


def _at(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def render_schedule(snapshot: InstanceSnapshot) -> list[str]:
    """The periodic entries, one line each (nothing when there is no schedule)."""
    if not snapshot.schedule:
        return []
    lines = [f"periodic tasks: {len(snapshot.schedule)} (state in {snapshot.schedule_dir})"]
    for entry in snapshot.schedule:
        outcome = "sending (interrupted?)" if entry.sending else (entry.outcome or "-")
        lines.append(f"  {entry.entry}  [{entry.schedule}]  next {_at(entry.next_due)}  "
                     f"last due {_at(entry.last_due)}  sent {_at(entry.sent_at)}  {outcome[:120]!r}")
    return lines
