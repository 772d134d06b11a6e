"""The dead tasks of an instance, through :func:`uwsgi_mules.mule.delivery.dead.list_dead`
(records that do not verify are left out and named)."""

from __future__ import annotations

from pathlib import Path

from ...mule.delivery.dead import DeadTask, list_dead
from ..model import DeadView


def describe_target(target: int | bytes) -> str:
    if isinstance(target, bytes):
        return f"farm {target.decode(errors='replace')}"
    return f"mule {target}" if target else "the shared queue"


def dead_view(task: DeadTask) -> DeadView:
    return DeadView(task.id, task.path, task.call, task.error, task.traceback, task.died_at, task.attempts,
                    task.retries, describe_target(task.target))


def read_dead(base: Path, problems: list[str]) -> list[DeadView]:
    """The dead tasks under ``base``, newest first; unreadable records are added to ``problems``."""
    tasks = list_dead(base, lambda path, why: problems.append(f"dead task record {path.name} not read: {why}"))
    return [dead_view(task) for task in reversed(tasks)]
