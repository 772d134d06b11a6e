"""Read a running uWSGI's stats server and show the mule queues.

The queue metrics come from the uwsgi-mules C plugin
(``mules_plugin.{shared|mule.N|farm.NAME}.{depth_messages,depth_bytes,sent,refused,received,taken}``),
published when uWSGI runs with ``--plugin mules_plugin.so --enable-metrics --stats ADDRESS``,
or from an application that declares ``uwsgi_mules.QUEUE.METRIC`` metrics
itself (the demo does, since pyuwsgi cannot load the plugin).
Reading the stats server itself is :mod:`uwsgi_mules.cli.stats_address`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: metric name prefixes of queue metrics: the C plugin's, and the ones the demo publishes itself
PREFIXES = ("mules_plugin.", "uwsgi_mules.")
COLUMNS = ("depth_messages", "depth_bytes", "sent", "refused", "received", "taken")


@dataclass
class QueueRow:
    queue: str
    values: dict[str, int] = field(default_factory=dict)


def queue_rows(stats: dict[str, object]) -> list[QueueRow]:
    """One row per queue found in the plugin's metrics, in a stable order."""
    metrics = stats.get("metrics")
    rows: dict[str, QueueRow] = {}
    for name, entry in (metrics.items() if isinstance(metrics, dict) else ()):
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            continue
        queue, _, metric = name[len(prefix):].rpartition(".")
        value = entry.get("value") if isinstance(entry, dict) else entry
        rows.setdefault(queue, QueueRow(queue)).values[metric] = int(value or 0)

    def order(row: QueueRow) -> tuple[int, int, str]:
        kind, _, rest = row.queue.partition(".")
        rank = {"shared": 0, "mule": 1, "farm": 2}.get(kind, 3)
        return (rank, int(rest) if rest.isdigit() else 0, rest)

    return sorted(rows.values(), key=order)


def missing_metrics_reason(stats: dict[str, object]) -> str:
    """Why ``stats`` has no uwsgi-mules queue metrics (for a stats reading with no rows)."""
    if "metrics" not in stats:
        return (
            "no uwsgi-mules metrics: uWSGI runs without --enable-metrics (or with --stats-no-metrics); "
            "start it with --plugin mules_plugin.so --enable-metrics"
        )
    return (
        "no uwsgi-mules metrics: the mules_plugin is not loaded (--plugin mules_plugin.so; "
        "pyuwsgi cannot load plugins, see plugin/README.md)"
    )


def render_table(rows: list[QueueRow]) -> str:
    """A fixed-width table of the rows ("-" where a value is unknown; columns
    that no row has are left out)."""
    columns = [c for c in COLUMNS if any(c in row.values for row in rows)]
    header = f"{'queue':<20}" + "".join(f"{c:>16}" for c in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = "".join(f"{row.values[c]:>16}" if c in row.values else f"{'-':>16}" for c in columns)
        lines.append(f"{row.queue:<20}{cells}")
    return "\n".join(lines)
