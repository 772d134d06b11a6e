"""Backends: the real ``uwsgi`` module, the in-process fake, and how one is chosen."""

from .base import Backend, BackendStats, QueueCounters
from .selection import activate, current_backend, deactivate, reset_backends

__all__ = [
    "Backend",
    "BackendStats",
    "QueueCounters",
    "activate",
    "current_backend",
    "deactivate",
    "reset_backends",
]
