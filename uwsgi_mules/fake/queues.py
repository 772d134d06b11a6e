"""Mule message queues with the capacity model of uWSGI's socketpairs.

Each real queue is a non-blocking ``SOCK_SEQPACKET`` socketpair. The kernel
charges every queued message ``256 + next_power_of_two(len + 320)`` bytes
against the socket buffer and accepts a write while the charged total is
below the buffer size (so the last accepted message may overshoot). Writes
larger than ``buffer - 32`` bytes are refused outright. Reads return one
whole message, truncated to the reader's buffer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..backends.base import QueueCounters


def message_cost(length: int) -> int:
    """Bytes of socket buffer one queued message of ``length`` bytes uses."""
    return 256 + (1 << (length + 320 - 1).bit_length())


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
        return self.budget - 32

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
