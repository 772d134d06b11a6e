"""Mule message queues with the capacity model of uWSGI's socketpairs.

Each real queue is a non-blocking ``SOCK_SEQPACKET`` socketpair; the kernel
charges every queued message its size in socket buffer and accepts a write
while the charged total is below the buffer size (see
:mod:`uwsgi_mules.msgpipe` for the exact model). Reads return one whole
message, truncated to the reader's buffer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..backends.base import QueueCounters
from ..msgpipe import max_message, message_cost

__all__ = ["MessageQueue", "message_cost"]


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
        self.used += message_cost(len(message))
        self.sent += 1
        return True

    def take(self, buffer_size: int) -> bytes | None:
        """Remove the oldest message, truncated to ``buffer_size`` bytes."""
        if not self.messages:
            return None
        message = self.messages.popleft()
        self.used -= message_cost(len(message))
        self.received += 1
        return message[:buffer_size]

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
