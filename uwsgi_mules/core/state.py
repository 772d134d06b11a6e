"""Process-wide settings and the task registry, resettable for tests."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .registry import TaskRegistry
from .retry_policy import RetryPolicy


@dataclass
class Settings:
    """How the typed layer sends.

    ``send_timeout``: seconds a send keeps retrying a full queue before
    raising :class:`~uwsgi_mules.errors.QueueFull`. ``backoff_initial`` and
    ``backoff_max``: the sleep between retries grows from the first to the
    second (seconds).
    """

    send_timeout: float = 10.0
    backoff_initial: float = 0.0005
    backoff_max: float = 0.05


class RuntimeState:
    def __init__(self) -> None:
        self.settings = Settings()
        self.registry = TaskRegistry()
        #: the retry policy of each task path with ``retry_on`` (definitions, like registrations)
        self.retry_policies: dict[str, RetryPolicy] = {}

    def reset(self) -> None:
        self.settings = Settings()
        self.registry.reset()


_state = RuntimeState()


def runtime_state() -> RuntimeState:
    return _state


def configure(**options: float) -> Settings:
    """Change send settings, e.g. ``configure(send_timeout=2.0)``."""
    known = {f.name for f in fields(Settings)}
    for key, value in options.items():
        if key not in known:
            raise TypeError(f"unknown setting {key!r}; known: {sorted(known)}")
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"setting {key} must be a number >= 0, got {value!r}")
        setattr(_state.settings, key, float(value))
    return _state.settings


def reset_runtime() -> None:
    """Restore default settings and clear the task cache (tests)."""
    _state.reset()
