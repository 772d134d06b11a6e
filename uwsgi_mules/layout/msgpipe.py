"""How the Linux kernel sizes and fills uWSGI's mule message pipes.

uWSGI creates every mule, farm and shared queue with ``create_msg_pipe()``
(``core/utils.c``): an ``AF_UNIX``/``SOCK_SEQPACKET`` socketpair, both ends
non-blocking, and, when ``--mule-msg-size`` is set, ``SO_SNDBUF`` and
``SO_RCVBUF`` set to that value on both ends. What follows is what the
kernel then does with a write (``net/unix/af_unix.c``, ``net/core/sock.c``),
measured on x86-64 with 4 KiB pages:

* the send buffer is ``net.core.wmem_default`` without the option, else
  ``max(2 * min(value, net.core.wmem_max), 4608)`` (the value is read as an
  unsigned int, so a negative one means ``wmem_max``);
* a write larger than the send buffer minus 32 bytes fails (``EMSGSIZE``);
  one larger than the kernel can allocate at once fails too (``ENOBUFS``);
* every queued message is charged its ``truesize`` against the send buffer:
  256 bytes of ``sk_buff``, the linear data plus 320 bytes of
  ``skb_shared_info`` rounded up to a power of two, and whole pages for the
  part over 16,064 bytes (at most 17 pages) that goes into page fragments;
* a write is accepted while the charged total is *below* the buffer size, so
  the last accepted message may overshoot it.

:func:`host_limits` reads the host's ``wmem_default`` and ``wmem_max``; the
model is checked against real socketpairs by the test suite.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

#: Linux defaults of ``net.core.wmem_default`` and ``net.core.wmem_max``
LINUX_DEFAULT_WMEM = 212992

#: ``SKB_DATA_ALIGN(sizeof(struct sk_buff))``
SKB_OVERHEAD = 256
#: ``SKB_DATA_ALIGN(sizeof(struct skb_shared_info))``, added to the linear data
SHINFO_SIZE = 320
PAGE_SIZE = 4096
#: ``SKB_MAX_ALLOC``: linear bytes before ``unix_dgram_sendmsg`` uses page fragments
SKB_MAX_ALLOC = 4 * PAGE_SIZE - SHINFO_SIZE
#: ``MAX_SKB_FRAGS * PAGE_SIZE``: most bytes that go into page fragments
MAX_FRAG_BYTES = 17 * PAGE_SIZE
#: largest linear allocation (``PAGE_SIZE << MAX_PAGE_ORDER``)
MAX_LINEAR_ALLOC = PAGE_SIZE << 10
#: ``SOCK_MIN_SNDBUF``
MIN_SNDBUF = 4608
#: the send buffer minus this is the largest write (``unix_dgram_sendmsg``)
SNDBUF_RESERVE = 32
#: largest message the kernel can allocate in one piece
MAX_ALLOCATABLE = MAX_LINEAR_ALLOC - SHINFO_SIZE + MAX_FRAG_BYTES


@dataclass(frozen=True)
class SocketLimits:
    """The host's ``net.core.wmem_default`` and ``net.core.wmem_max``."""

    wmem_default: int = LINUX_DEFAULT_WMEM
    wmem_max: int = LINUX_DEFAULT_WMEM


@functools.lru_cache(maxsize=1)
def host_limits() -> SocketLimits:
    """This host's socket limits from ``/proc/sys/net/core`` (Linux defaults
    where they cannot be read). Cached: ``host_limits.cache_clear()`` re-reads."""
    return SocketLimits(
        wmem_default=_read_sysctl("wmem_default", LINUX_DEFAULT_WMEM),
        wmem_max=_read_sysctl("wmem_max", LINUX_DEFAULT_WMEM),
    )


def _read_sysctl(name: str, default: int) -> int:
    try:
        with open(f"/proc/sys/net/core/{name}", encoding="ascii") as fh:
            value = int(fh.read().strip())
    except (OSError, ValueError):
        return default
    return value if value > 0 else default


def send_buffer(msg_size: int | None, limits: SocketLimits | None = None) -> int:
    """``SO_SNDBUF`` of a queue created with ``--mule-msg-size = msg_size``
    (0 or None: the option is not set)."""
    limits = limits or host_limits()
    if not msg_size:
        return limits.wmem_default
    requested = msg_size & 0xFFFFFFFF  # setsockopt() reads it as unsigned
    return max(2 * min(requested, limits.wmem_max), MIN_SNDBUF)


def max_message(buffer: int) -> int:
    """Largest write a queue with this send buffer accepts at all."""
    return min(buffer - SNDBUF_RESERVE, MAX_ALLOCATABLE)


def message_cost(length: int) -> int:
    """Bytes of send buffer one queued message of ``length`` bytes is charged."""
    frag_bytes = 0
    if length > SKB_MAX_ALLOC:
        frag_bytes = min(length - SKB_MAX_ALLOC, MAX_FRAG_BYTES)
        frag_bytes = -(-frag_bytes // PAGE_SIZE) * PAGE_SIZE  # PAGE_ALIGN
    linear = length - frag_bytes
    return SKB_OVERHEAD + (1 << (linear + SHINFO_SIZE - 1).bit_length()) + frag_bytes


def capacity(length: int, buffer: int) -> int:
    """How many messages of ``length`` bytes a queue nobody reads accepts
    (0 when such a message is refused outright)."""
    if length > max_message(buffer):
        return 0
    return -(-buffer // message_cost(length))
