"""The queue capacity model against real socketpairs built like uWSGI's
``create_msg_pipe()`` (``core/utils.c``): AF_UNIX/SOCK_SEQPACKET, both ends
non-blocking, SO_SNDBUF and SO_RCVBUF set to ``--mule-msg-size`` when given."""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
import sys
import termios
from collections.abc import Iterator

import pytest

from uwsgi_mules.layout import msgpipe
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.layout.msgpipe import SocketLimits, capacity, host_limits, max_message, message_cost, send_buffer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the model is of the Linux kernel")


def msg_pipe(msg_size: int | None = None) -> tuple[socket.socket, socket.socket]:
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in ends:
        end.setblocking(False)
        if msg_size:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, msg_size)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, msg_size)
    return ends


def charged(end: socket.socket) -> int:
    """Bytes of send buffer the queued messages use (``SIOCOUTQ``: ``sk_wmem_alloc``)."""
    return struct.unpack("i", fcntl.ioctl(end.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def fill(msg_size: int | None, size: int) -> int:
    writer, reader = msg_pipe(msg_size)
    with writer, reader:
        payload = b"f" * size
        count = 0
        while True:
            try:
                writer.send(payload)
            except BlockingIOError:
                return count
            except OSError as exc:
                assert exc.errno in (errno.EMSGSIZE, errno.ENOBUFS) and count == 0
                return 0
            count += 1


def sizes_up_to(maximum: int) -> Iterator[int]:
    """Every size up to 100,000 bytes, then every step of the model (power of
    two and page boundaries, each +-1) and a stride, up to ``maximum``."""
    yield from range(0, min(maximum, 100_000) + 1)
    edges = {maximum}
    for power in range(8, 24):
        edges.update({(1 << power) - msgpipe.SHINFO_SIZE + delta for delta in (-1, 0, 1)})
        edges.update({(1 << power) - msgpipe.SHINFO_SIZE + msgpipe.MAX_FRAG_BYTES + delta for delta in (-1, 0, 1)})
    edges.update(range(100_000, maximum, 7_919))
    yield from sorted(size for size in edges if 100_000 < size <= maximum)


@pytest.mark.parametrize("msg_size", [None, 1_000_000], ids=["default", "mule-msg-size-1000000"])
def test_every_message_is_charged_what_the_model_says(msg_size: int | None) -> None:
    writer, reader = msg_pipe(msg_size)
    with writer, reader:
        buffer = writer.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        assert buffer == send_buffer(msg_size)
        wrong = []
        for size in sizes_up_to(max_message(buffer)):
            writer.send(b"c" * size)
            if charged(writer) != message_cost(size):
                wrong.append((size, charged(writer), message_cost(size)))
            reader.recv(size + 1)
        assert not wrong[:10]


@pytest.mark.parametrize("msg_size", [None, 1, 5_000, 106_496, 1_000_000, -1, 2**31 - 1])
def test_send_buffer_follows_the_host_limits(msg_size: int | None) -> None:
    writer, reader = msg_pipe(msg_size)
    with writer, reader:
        assert writer.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == send_buffer(msg_size)


@pytest.mark.parametrize("msg_size", [None, 5_000, 1_000_000])
def test_the_largest_write_is_the_models(msg_size: int | None) -> None:
    limit = max_message(send_buffer(msg_size))
    writer, reader = msg_pipe(msg_size)
    with writer, reader:
        writer.send(b"l" * limit)
        reader.recv(limit + 1)
        with pytest.raises(OSError) as refused:
            writer.send(b"l" * (limit + 1))
        assert refused.value.errno in (errno.EMSGSIZE, errno.ENOBUFS)


@pytest.mark.parametrize("msg_size", [None, 5_000, 100_000, 1_000_000])
@pytest.mark.parametrize(
    "size", [1, 100, 192, 193, 1_000, 10_000, 16_064, 16_065, 20_000, 65_536, 85_696, 85_697, 100_000]
)
def test_a_queue_nobody_reads_takes_what_the_kernel_takes(msg_size: int | None, size: int) -> None:
    expected = fill(msg_size, size)
    assert capacity(size, send_buffer(msg_size)) == expected
    with FakeUwsgi(mules=1, msg_size=msg_size) as fake:
        assert sum(1 for _ in iter(lambda: fake.mule_msg(b"f" * size, 1), False)) == expected


def test_figures_of_the_issue_on_a_host_with_default_limits() -> None:
    limits = SocketLimits(wmem_default=212_992, wmem_max=4_194_304)
    default = send_buffer(None, limits)
    assert [capacity(size, default) for size in (20_000, 65_536, 100_000)] == [11, 4, 3]
    assert capacity(100, send_buffer(1_000_000, limits)) == 2_605
    assert max_message(send_buffer(1_000_000, limits)) == 1_999_968
    # where wmem_max is the Linux default, --mule-msg-size cannot pass 2 x 212,992
    assert max_message(send_buffer(1_000_000, SocketLimits())) == 425_952


def test_host_limits_are_read_from_proc() -> None:
    with open("/proc/sys/net/core/wmem_max") as fh:
        wmem_max = int(fh.read())
    with open("/proc/sys/net/core/wmem_default") as fh:
        wmem_default = int(fh.read())
    host_limits.cache_clear()
    assert host_limits() == SocketLimits(wmem_default=wmem_default, wmem_max=wmem_max)
