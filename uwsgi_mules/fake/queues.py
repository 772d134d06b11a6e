"""Mule message queues with the capacity model of uWSGI's socketpairs.

Each real queue is a non-blocking ``SOCK_SEQPACKET`` socketpair; the kernel
charges every queued message its size in socket buffer and accepts a write
while the charged total is below the buffer size (see
:mod:`uwsgi_mules.layout.msgpipe` for the exact model). Reads return one whole
message, truncated to the reader's buffer.

:class:`MuleQueues` owns every queue of a fake instance, the lock and the
condition that guard them, the order a mule polls them in, and the put and
take that the rest of the fake uses.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import MuleTarget, QueueCounters
from ..errors import QueueFull
from ..layout.msgpipe import SHINFO_SIZE, SKB_MAX_ALLOC, SKB_OVERHEAD, max_message, message_cost
from ..layout.topology import Topology

__all__ = ["MessageQueue", "MuleQueues", "message_cost", "queued_cost"]

#: ``message_cost(n)`` is ``SKB_OVERHEAD + (1 << (n + _SHINFO_ROUND).bit_length())``
#: for every ``n <= SKB_MAX_ALLOC`` (no page fragments)
_SHINFO_ROUND = SHINFO_SIZE - 1


def queued_cost(length: int) -> int:
    """What a queued message of ``length`` bytes is charged (:func:`message_cost`, fast for the common sizes)."""
    if length <= SKB_MAX_ALLOC:
        return SKB_OVERHEAD + (1 << (length + _SHINFO_ROUND).bit_length())
    return message_cost(length)


@dataclass
class MessageQueue:
    """One queue: FIFO of whole messages and a byte budget."""

    name: str
    budget: int
    messages: deque[bytes] = field(default_factory=deque)
    used: int = 0
    sent: int = 0
    refused: int = 0
    received: int = 0

    @property
    def max_message(self) -> int:
        """Largest message this queue accepts at all."""
        return max_message(self.budget)

    def put(self, message: bytes) -> bool:
        """Queue ``message``; False (nothing queued) when full or too large."""
        if len(message) > self.max_message or self.used >= self.budget:
            self.refused += 1
            return False
        self.messages.append(message)
        self.used += queued_cost(len(message))
        self.sent += 1
        return True

    def take(self, buffer_size: int) -> bytes | None:
        """Remove the oldest message, truncated to ``buffer_size`` bytes."""
        if not self.messages:
            return None
        message = self.messages.popleft()
        length = len(message)
        self.used -= queued_cost(length)
        self.received += 1
        return message if length <= buffer_size else message[:buffer_size]

    def __len__(self) -> int:
        return len(self.messages)

    def counters(self) -> QueueCounters:
        return QueueCounters(
            sent=self.sent,
            refused=self.refused,
            received=self.received,
            depth_bytes=sum(len(m) for m in self.messages),
            depth_messages=len(self.messages),
        )


class MuleQueues:
    """Every queue of one fake instance: the shared queue, one per mule, one
    per farm; the lock and condition that guard them (threads of the
    threaded mode wait on it); each mule's poll order; put and take."""

    def __init__(self, topology: Topology) -> None:
        budget = topology.socket_buffer
        self.shared = MessageQueue("shared", budget)
        self.by_mule = {i: MessageQueue(f"mule{i}", budget) for i in range(1, topology.mule_count + 1)}
        self.by_farm = {f.name: MessageQueue(f"farm:{f.name}", budget) for f in topology.farms}
        self._farms_of = topology.farms_of
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        #: the threads waiting on ``cond`` (CPython keeps them there; None
        #: elsewhere: then every change notifies)
        self.waiters = _waiters_of(self.cond)

    # -- which queues ---------------------------------------------------------------------

    def poll_order(self, mule: int, *, farms: bool = True) -> list[MessageQueue]:
        """The queues mule ``mule`` reads, in uWSGI's order: its own, the shared one, its farms'."""
        order = [self.by_mule[mule], self.shared]
        if farms:
            order += [self.by_farm[name] for name in self._farms_of(mule)]
        return order

    def farm_queues(self, mule: int) -> list[MessageQueue]:
        return [self.by_farm[name] for name in self._farms_of(mule)]

    def for_target(self, target: MuleTarget) -> MessageQueue | None:
        """The queue ``uwsgi.mule_msg(message, target)`` writes to; None for a
        mule id out of range (a bad file descriptor); ValueError as uWSGI."""
        if target is None:
            return self.shared
        if isinstance(target, bytes):
            queue = self.by_farm.get(target.decode(errors="replace"))
            if queue is None:
                raise ValueError("unknown farm")
            return queue
        if isinstance(target, int):
            if target == 0:
                return self.shared
            return self.by_mule.get(target)
        raise ValueError("invalid mule")

    def all(self) -> list[MessageQueue]:
        return [*self.by_mule.values(), self.shared, *self.by_farm.values()]

    def pending(self) -> int:
        """Messages waiting in all queues."""
        return sum(len(q) for q in self.all())

    # -- put and take ---------------------------------------------------------------------

    def has_waiters(self) -> bool:
        """Whether a thread waits on the condition (always True when the implementation does not say)."""
        waiters = self.waiters
        return waiters is None or bool(waiters)

    def put(self, queue: MessageQueue, data: bytes) -> bool:
        """Queue ``data``; False when full or too large (counted by the queue)."""
        with self.lock:
            accepted = queue.put(data)
            if accepted and self.has_waiters():
                self.cond.notify_all()
        return accepted

    def put_waiting(self, queue: MessageQueue, data: bytes, timeout: float, *, stopped: Callable[[], bool],
                    drained: Callable[[], bool]) -> bool:
        """Queue ``data`` once there is room, waiting up to ``timeout`` seconds
        (0: one try); False (counted as refused) when it is too large, the
        queue stays full or ``stopped()``. :class:`QueueFull` when it is full
        and nothing ``drained()`` it (step mode: waiting cannot help)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(data) <= queue.max_message:
                if queue.used < queue.budget:
                    return self.put(queue, data)
                if timeout > 0 and not drained():  # timeout 0 (a replay): full is a plain False
                    queue.refused += 1
                    raise QueueFull(
                        f"queue {queue.name!r} is full ({len(queue)} messages) and this fake runs in "
                        "step mode with no thread receiving: nothing drains it until run_pending() is "
                        "called, so waiting cannot help. Call fake.run_pending() more often, use "
                        "FakeUwsgi(threaded=True), or raise the capacity (msg_size=...)"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stopped():
                    break
                self.cond.wait(remaining)
            queue.refused += 1
            return False

    def fast_put(self, queue: MessageQueue) -> Callable[[bytes], bool]:
        """``put`` into ``queue`` for the senders' hot path: True when queued;
        False when it is full or the message large (then :meth:`put` decides,
        counts and the caller logs)."""
        acquire = self.lock.acquire  # not ``with``: a third of the cost
        release = self.lock.release
        notify_all = self.cond.notify_all
        waiters = self.waiters
        small = min(queue.max_message, SKB_MAX_ALLOC)  # no page fragments, fits the queue
        budget = queue.budget
        messages = queue.messages
        shinfo_round = _SHINFO_ROUND

        def put_small(message: bytes) -> bool:
            length = len(message)
            if length > small:
                return False
            acquire()
            try:
                if queue.used < budget:
                    messages.append(message)
                    queue.used += SKB_OVERHEAD + (1 << (length + shinfo_round).bit_length())
                    queue.sent += 1
                    if waiters is None or waiters:  # a threaded mule may wait for a message
                        notify_all()
                    return True
                return False
            finally:
                release()

        return put_small

    def take_first(self, order: list[MessageQueue], buffer_size: int) -> bytes | None:
        """The oldest message of the first non-empty queue of ``order``
        (truncated to ``buffer_size``), or None; wakes threaded senders."""
        self.lock.acquire()
        try:
            for queue in order:
                if queue.messages:
                    message = queue.take(buffer_size)
                    waiters = self.waiters
                    if waiters is None or waiters:  # a threaded sender may wait for room
                        self.cond.notify_all()
                    return message
            return None
        finally:
            self.lock.release()


def _waiters_of(cond: threading.Condition) -> Any:
    """The deque of threads waiting on ``cond`` (CPython keeps them in
    ``_waiters``), or None when the implementation does not say."""
    waiters = getattr(cond, "_waiters", None)
    return waiters if hasattr(waiters, "__len__") else None
