"""``Mule`` and ``Farm``: the typed face of uWSGI mules, uwsgiconf-compatible."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ..backends.base import QueueCounters
from ..backends.selection import current_backend
from ..envelope import MAGIC
from ..errors import NotInMule, ReservedMessage
from .offload import mule_offload
from .sender import send_bytes
from .targets import Addressee, Target, farm_target, mule_target

#: bytes ``uwsgi.farm_get_msg`` reads at most (a fixed buffer in uWSGI 2.0)
FARM_RECV_SIZE = 65536


def _to_bytes(message: str | bytes) -> bytes:
    if isinstance(message, str):
        raw = message.encode()
    elif isinstance(message, (bytes, bytearray, memoryview)):
        raw = bytes(message)
    else:
        raise TypeError(f"a message must be str or bytes, not {type(message).__name__}")
    if raw.startswith(MAGIC):
        raise ReservedMessage(
            f"refused a {len(raw)} bytes message that starts with the uwsgi-mules envelope marker: "
            "plain messages may not look like offloads (is untrusted input forwarded here?)"
        )
    return raw


def _to_str(message: bytes | None) -> str:
    # surrogateescape keeps non-UTF-8 bytes recoverable: msg.encode(errors="surrogateescape")
    return (message or b"").decode(errors="surrogateescape")


class Mule(Addressee):
    """A uWSGI mule, by its 1-based id (as in ``uwsgiconf.runtime.mules``)."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:  # noqa: A002 - uwsgiconf's signature
        mule_target(id)  # validates the type and sign
        self.id = id

    def offload_target(self) -> Target:
        return mule_target(self.id)

    def __str__(self) -> str:
        return f"{self.id}"

    def __repr__(self) -> str:
        return f"Mule({self.id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mule) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("Mule", self.id))

    def offload(self, *, retries: int = 0, **retry_options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: run the function on this mule (``retries``, ``retry_on``,
        ``retry_backoff``, ``retry_backoff_max``, ``retry_jitter``: see :func:`mule_offload`)."""
        return mule_offload(self, retries=retries, **retry_options)

    @classmethod
    def get_current_id(cls) -> int:
        """The current mule's id, 0 outside a mule."""
        return current_backend().mule_id()

    @classmethod
    def get_current(cls) -> Mule | None:
        """The current mule, or None outside a mule."""
        mule_id = cls.get_current_id()
        return Mule(mule_id) if mule_id else None

    @classmethod
    def get_message(
        cls,
        *,
        signals: bool = True,
        farms: bool = False,
        buffer_size: int = 65536,
        timeout: int = -1,
    ) -> str:
        """Block until a message arrives and return it ("" on timeout).

        ``signals=True`` runs uWSGI signal handlers while waiting (uWSGI 2.0
        inverts this flag; it is passed so that it means what it says).
        ``timeout`` is in seconds (-1: forever; fractions round up).

        :raises NotInMule: outside a mule.
        """
        return _to_str(receive(signals=signals, farms=farms, buffer_size=buffer_size, timeout=timeout))

    def queue_stats(self) -> QueueCounters | None:
        """Depth and counters of this mule's own queue, or None where the
        backend cannot see them (real uWSGI without the plugin)."""
        return _queue_stats(f"mule{self.id}")

    def queue_depth(self) -> int | None:
        """Messages waiting in this mule's own queue (None: unknown)."""
        stats = self.queue_stats()
        return stats.depth_messages if stats is not None else None

    def send(self, message: str | bytes, *, timeout: float | None = None) -> bool:
        """Queue a message for this mule; True once queued.

        :raises UnknownMule: no such mule.
        :raises QueueFull: the queue stayed full for ``timeout`` seconds.
        :raises MessageTooLarge: the mule could not read it whole.
        """
        return send_bytes(current_backend(), _to_bytes(message), mule_target(self.id), timeout=timeout)


class Farm(Addressee):
    """A mule farm (as in ``uwsgiconf.runtime.mules``)."""

    __slots__ = ("mules", "name")

    def offload_target(self) -> Target:
        return farm_target(self.name)

    def __init__(self, name: str, *, mules: list[int] | None = None) -> None:
        if isinstance(name, bytes):
            name = name.decode()
        farm_target(name)  # validates
        self.name = name
        self.mules = tuple(Mule(m) for m in mules or [])

    def __str__(self) -> str:
        return f"{self.name}: {', '.join(map(str, self.mules))}"

    def __repr__(self) -> str:
        return f"Farm({self.name!r}, mules={[m.id for m in self.mules]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Farm) and (other.name, other.mules) == (self.name, self.mules)

    def __hash__(self) -> int:
        return hash(("Farm", self.name))

    @classmethod
    def get_farms(cls) -> list[Farm]:
        """Every configured farm with its mules (works on Python 3, unlike uwsgiconf)."""
        topology = current_backend().topology()
        if topology is None:
            return []
        return [Farm(f.name, mules=list(f.mules)) for f in topology.farms]

    @property
    def is_mine(self) -> bool:
        """Whether the current mule belongs to this farm."""
        return bool(current_backend().in_farm(self.name))

    def offload(self, *, retries: int = 0, **retry_options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: run the function on any free mule of this farm (``retries``,
        ``retry_on``, ``retry_backoff``, ``retry_backoff_max``, ``retry_jitter``:
        see :func:`mule_offload`)."""
        return mule_offload(self, retries=retries, **retry_options)

    @classmethod
    def get_message(cls, *, signals: bool = False, buffer_size: int = FARM_RECV_SIZE, timeout: int = -1) -> str:
        """Block until a message for one of this mule's farms arrives and
        return it: farm messages only, never one of the mule's own or the
        shared queue (those stay queued), as ``uwsgi.farm_get_msg`` and
        uwsgiconf do.

        uWSGI 2.0 reads the farm queues alone only in ``farm_get_msg``, which
        waits forever, runs no signal handler while waiting and reads at most
        65,536 bytes, so ``timeout`` must be -1, ``signals`` False and
        ``buffer_size`` at most 65,536 (a ``ValueError`` says so otherwise;
        ``Mule.get_message(farms=True)`` has a timeout and runs signals, but
        also returns the mule's own and shared messages). Returns ``""`` if
        uWSGI's wait is interrupted.

        :raises NotInMule: outside a mule, or in a mule that is in no farm
            (it would wait forever).
        """
        if timeout is None or timeout >= 0:
            raise ValueError(
                "Farm.get_message() cannot time out: uWSGI 2.0 reads farm messages alone only with "
                "farm_get_msg(), which waits forever; use Mule.get_message(farms=True, timeout=...) "
                "to also take the mule's own and shared messages"
            )
        if signals:
            raise ValueError(
                "Farm.get_message() cannot run signal handlers while waiting (uWSGI 2.0's "
                "farm_get_msg() does not); use Mule.get_message(farms=True)"
            )
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or not 0 < buffer_size <= FARM_RECV_SIZE:
            raise ValueError(
                f"buffer_size must be 1..{FARM_RECV_SIZE} (farm_get_msg reads at most that), got {buffer_size!r}"
            )
        backend = current_backend()
        mule_id = backend.mule_id()
        if not mule_id:
            raise NotInMule("Farm.get_message() can only be called in a mule")
        topology = backend.topology()
        if topology is not None and not topology.farms_of(mule_id):
            raise NotInMule(f"mule {mule_id} is in no farm; it would wait forever")
        return _to_str((backend.farm_get_msg() or b"")[:buffer_size])

    def queue_stats(self) -> QueueCounters | None:
        """Depth and counters of this farm's queue (None: unknown)."""
        return _queue_stats(f"farm:{self.name}")

    def queue_depth(self) -> int | None:
        """Messages waiting in this farm's queue (None: unknown)."""
        stats = self.queue_stats()
        return stats.depth_messages if stats is not None else None

    def send(self, message: str | bytes, *, timeout: float | None = None) -> bool:
        """Queue a message for one free mule of this farm; True once queued.

        :raises UnknownFarm: no such farm (raw ``farm_msg`` ignores it silently).
        :raises QueueFull: the farm queue stayed full for ``timeout`` seconds.
        """
        return send_bytes(current_backend(), _to_bytes(message), farm_target(self.name), timeout=timeout)


def shared_queue_stats() -> QueueCounters | None:
    """Depth and counters of the shared mule queue (None: unknown)."""
    return _queue_stats("shared")


def _queue_stats(key: str) -> QueueCounters | None:
    stats = current_backend().stats()
    if stats is None:
        return None
    return stats.queues.get(key)


def receive(*, signals: bool = True, farms: bool = True, buffer_size: int = 65536, timeout: float = -1) -> bytes:
    """Raw bytes of the next message for this mule (``b""`` on timeout).

    Signals handled while waiting do not end the wait early.
    """
    backend = current_backend()
    if not backend.mule_id():
        raise NotInMule("mule messages can only be received in a mule")
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive int, got {buffer_size!r}")
    deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
    while True:
        if deadline is None:
            wait = -1
        else:
            remaining = deadline - time.monotonic()
            wait = max(0, math.ceil(remaining)) if remaining > 0 else 0
        # uWSGI 2.0 handles signals in mule_get_msg only when signals is False
        message = backend.mule_get_msg(not signals, farms, buffer_size, wait)
        if message is not None:
            return message
        if deadline is not None and time.monotonic() >= deadline:
            return b""
