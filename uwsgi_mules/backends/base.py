"""The interface every backend implements.

The typed layer (``uwsgi_mules.runtime``) only talks to a :class:`Backend`.
The raw methods keep the names, arguments and *quirks* of the ``uwsgi``
module (False on a full queue, ``b""`` on timeout, ValueError cases), so a
fake and the real server can be checked against one contract. Backends never
import the typed layer.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from ..topology import Topology

MuleTarget = int | bytes | str | None
MessageHook = Callable[[bytes], object]

logger = logging.getLogger("uwsgi_mules")


@dataclass
class QueueCounters:
    """Counters of one queue, as far as a backend can see them."""

    sent: int = 0
    refused: int = 0
    received: int = 0
    depth_bytes: int | None = None
    depth_messages: int | None = None


@dataclass
class BackendStats:
    """Per-queue counters: keys are ``"shared"``, ``"mule1"``..., ``"farm:NAME"``."""

    queues: dict[str, QueueCounters] = field(default_factory=dict)


class Backend(ABC):
    """A uWSGI process as seen by the typed layer."""

    #: short name used in logs and reprs ("uwsgi", "fake")
    name = "backend"

    # -- identity ---------------------------------------------------------

    @abstractmethod
    def mule_id(self) -> int:
        """Like ``uwsgi.mule_id()``: 0 outside a mule."""

    @abstractmethod
    def worker_id(self) -> int:
        """Like ``uwsgi.worker_id()``: 0 in the master and in mules."""

    @abstractmethod
    def in_farm(self, name: str | None = None) -> bool | None:
        """Like ``uwsgi.in_farm(name)``: True or None."""

    # -- raw messaging (real uWSGI semantics) -------------------------------

    @abstractmethod
    def mule_msg(self, message: bytes | str, target: MuleTarget = None) -> bool:
        """Like ``uwsgi.mule_msg``: True if queued, False if refused."""

    @abstractmethod
    def farm_msg(self, farm: str, message: bytes | str) -> None:
        """Like ``uwsgi.farm_msg``: always None."""

    @abstractmethod
    def mule_get_msg(
        self,
        signals: bool = True,
        farms: bool = True,
        buffer_size: int = 65536,
        timeout: int = -1,
    ) -> bytes | None:
        """Like ``uwsgi.mule_get_msg``: bytes, ``b""`` on timeout, None after a
        handled signal."""

    @abstractmethod
    def farm_get_msg(self) -> bytes | None:
        """Like ``uwsgi.farm_get_msg``."""

    # -- the message hook of signal-only mules --------------------------------

    @abstractmethod
    def get_msg_hook(self) -> MessageHook | None:
        """The current ``uwsgi.mule_msg_hook`` of this process."""

    @abstractmethod
    def set_msg_hook(self, hook: MessageHook | None) -> None:
        """Set ``uwsgi.mule_msg_hook`` for this process."""

    # -- layout --------------------------------------------------------------

    @abstractmethod
    def topology(self) -> Topology | None:
        """The mule/farm layout, or None when it cannot be known."""

    # -- optional capabilities (the plugin, the fake) -------------------------------

    def send_wait(self, message: bytes, target: MuleTarget, timeout: float) -> bool | None:
        """Send, waiting up to ``timeout`` seconds for room.

        Returns True/False, or None when the backend cannot wait natively
        (the typed layer then retries with backoff).
        """
        return None

    def stats(self) -> BackendStats | None:
        """Queue depths and counters, or None when unavailable."""
        return None

    def report_task_error(self, exc: BaseException, description: str) -> None:
        """Called by the mule side when an offloaded task raised."""
        logger.error("offloaded task %s failed", description, exc_info=(type(exc), exc, exc.__traceback__))

    def log(self, message: str) -> None:
        """Write a line to the server log."""
        logger.warning(message)
