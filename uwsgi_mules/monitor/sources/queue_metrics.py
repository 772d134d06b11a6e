"""The queue counters in a stats server reading.

The C plugin publishes ``mules_plugin.{shared|mule.N|farm.NAME}.{depth_messages,
depth_bytes,sent,refused,received,taken}`` (with ``--enable-metrics``); an
application may declare ``uwsgi_mules.QUEUE.METRIC`` metrics itself (the demo
does, since pyuwsgi cannot load the plugin).
"""

from __future__ import annotations

from typing import Any

from ..model import QueueView

#: metric name prefixes of queue metrics: the C plugin's, and the ones the demo publishes itself
PREFIXES = ("mules_plugin.", "uwsgi_mules.")


def queue_views(stats: dict[str, Any]) -> list[QueueView]:
    """One view per queue found in the metrics, in a stable order (shared, mules, farms, others)."""
    metrics = stats.get("metrics") or {}
    views: dict[str, QueueView] = {}
    if not isinstance(metrics, dict):
        return []
    for name, entry in metrics.items():
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            continue
        queue, _, metric = name[len(prefix):].rpartition(".")
        value = entry.get("value") if isinstance(entry, dict) else entry
        try:
            number = int(value or 0)
        except (TypeError, ValueError):
            continue
        views.setdefault(queue, QueueView(queue)).values[metric] = number
    return sorted(views.values(), key=_order)


def _order(view: QueueView) -> tuple[int, int, str]:
    kind, _, rest = view.name.partition(".")
    rank = {"shared": 0, "mule": 1, "farm": 2}.get(kind, 3)
    return (rank, int(rest) if rest.isdigit() else 0, rest)


def missing_reason(stats: dict[str, Any]) -> str:
    """Why ``stats`` has no uwsgi-mules queue metrics."""
    if "metrics" not in stats:
        return (
            "no uwsgi-mules metrics: uWSGI runs without --enable-metrics (or with --stats-no-metrics); "
            "start it with --plugin mules_plugin.so --enable-metrics"
        )
    return (
        "no uwsgi-mules metrics: the mules_plugin is not loaded (--plugin mules_plugin.so; "
        "pyuwsgi cannot load plugins, see plugin/README.md)"
    )
