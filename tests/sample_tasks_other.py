"""A second module with a task named like one in sample_tasks."""

from __future__ import annotations

from uwsgi_mules import Mule

from .sample_tasks import LOG


@Mule(2).offload()
def send(item: str) -> None:
    LOG.append(("sample_tasks_other.send", item))
