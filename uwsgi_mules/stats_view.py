"""Read a running uWSGI's stats server and show the mule queues.

The queue metrics come from the uwsgi-mules C plugin
(``mules_plugin.{shared|mule.N|farm.NAME}.{depth_messages,depth_bytes,sent,refused,received,taken}``),
published when uWSGI runs with ``--plugin mules_plugin.so --enable-metrics --stats ADDRESS``.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

PREFIX = "mules_plugin."
COLUMNS = ("depth_messages", "depth_bytes", "sent", "refused", "received", "taken")


@dataclass
class QueueRow:
    queue: str
    values: dict[str, int] = field(default_factory=dict)


def read_stats(address: str, timeout: float = 5.0) -> dict[str, object]:
    """The JSON of a stats server: ``host:port`` or a unix socket path
    (plain stats socket, or ``http://host:port`` with ``--stats-http``)."""
    if address.startswith("http://"):
        import urllib.request

        with urllib.request.urlopen(address, timeout=timeout) as response:
            return json.loads(response.read())
    if ":" in address and not address.startswith("/"):
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
    chunks = []
    with sock:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    if raw.startswith(b"HTTP/"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    return json.loads(raw)


def queue_rows(stats: dict[str, object]) -> list[QueueRow]:
    """One row per queue found in the plugin's metrics, in a stable order."""
    metrics = stats.get("metrics") or {}
    rows: dict[str, QueueRow] = {}
    for name, entry in metrics.items():  # type: ignore[union-attr]
        if not name.startswith(PREFIX):
            continue
        queue, _, metric = name[len(PREFIX):].rpartition(".")
        value = entry.get("value") if isinstance(entry, dict) else entry
        rows.setdefault(queue, QueueRow(queue)).values[metric] = int(value or 0)

    def order(row: QueueRow) -> tuple[int, int, str]:
        kind, _, rest = row.queue.partition(".")
        rank = {"shared": 0, "mule": 1, "farm": 2}.get(kind, 3)
        return (rank, int(rest) if rest.isdigit() else 0, rest)

    return sorted(rows.values(), key=order)


def render_table(rows: list[QueueRow]) -> str:
    if not rows:
        return (
            "no uwsgi-mules metrics: load the plugin (--plugin mules_plugin.so) and "
            "enable metrics (--enable-metrics)"
        )
    header = f"{'queue':<20}" + "".join(f"{c:>16}" for c in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = "".join(f"{row.values[c]:>16}" if c in row.values else f"{'-':>16}" for c in COLUMNS)
        lines.append(f"{row.queue:<20}{cells}")
    return "\n".join(lines)
