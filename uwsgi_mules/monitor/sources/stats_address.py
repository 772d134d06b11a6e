"""Reach a running uWSGI's stats server, whatever form it was given.

uWSGI serves its stats on ``--stats ADDRESS``: a TCP socket when ADDRESS has
a colon (``127.0.0.1:9191``, ``:9191``, ``[::1]:9191``), otherwise a unix
socket (a path, or ``@name`` for an abstract one). A plain stats socket
writes its JSON as soon as a client connects; with ``--stats-http`` the same
socket first waits for an HTTP request and answers with HTTP headers.

:func:`read_stats` accepts every form (and ``http://host:port``,
``unix:PATH``), finds out which of the two protocols the server speaks and
returns the decoded JSON with what it found.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any

#: how long to wait for a plain stats socket to speak first before sending an HTTP request
PROBE_SECONDS = 0.5


class StatsError(Exception):
    """The address is invalid or the stats server could not be read (the message says why)."""


@dataclass(frozen=True)
class StatsAddress:
    """A parsed stats server address."""

    text: str
    family: socket.AddressFamily
    host: str = ""
    port: int = 0
    path: str = ""  # unix socket path; starts with "\0" for an abstract socket
    http_hint: bool = False  # written as http://...

    @property
    def kind(self) -> str:
        if self.family == socket.AF_UNIX:
            return "abstract unix socket" if self.path.startswith("\0") else "unix socket"
        return "TCP"

    def connect(self, timeout: float) -> socket.socket:
        """An open connection to the server, or :class:`StatsError`."""
        try:
            if self.family != socket.AF_UNIX:
                return socket.create_connection((self.host, self.port), timeout=timeout)
            if not self.path.startswith("\0"):
                return _connect_unix(self.path, timeout)
            # uWSGI binds "@name" with a trailing NUL in the address ("\0name\0");
            # other servers (and uWSGI's --abstract-socket) bind "\0name"
            try:
                return _connect_unix(self.path + "\0", timeout)
            except ConnectionRefusedError:
                return _connect_unix(self.path, timeout)
        except FileNotFoundError as exc:
            raise StatsError(f"no unix socket at {self.path}: is uWSGI running with --stats {self.text}?") from exc
        except ConnectionRefusedError as exc:
            raise StatsError(f"nothing listens on {self.text} ({self.kind}): is uWSGI running with --stats?") from exc
        except OSError as exc:
            raise StatsError(f"cannot connect to {self.text} ({self.kind}): {exc}") from exc


def _connect_unix(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def parse_address(text: str) -> StatsAddress:
    """Parse a stats address as uWSGI's ``--stats`` takes it (a colon means
    TCP, anything else a unix socket; ``@name`` is abstract), or
    ``http://host:port[/...]``, ``tcp://host:port``, ``unix:PATH``."""
    value = text.strip()
    if not value:
        raise StatsError("empty stats address")
    lowered = value.lower()
    if lowered.startswith("https://"):
        raise StatsError("uWSGI's stats server does not speak HTTPS: use http://host:port or host:port")
    for scheme, http_hint in (("http://", True), ("tcp://", False)):
        if lowered.startswith(scheme):
            hostport = value[len(scheme):].split("/", 1)[0]
            if ":" not in hostport.rsplit("]", 1)[-1]:
                hostport += ":80" if http_hint else ""
            return _tcp(text, hostport, http_hint)
    if lowered.startswith("unix:"):
        path = value[len("unix:"):]
        path = "/" + path.lstrip("/") if path.startswith("//") else path
        return _unix(text, path)
    if value.startswith("@"):
        return _unix(text, value)
    if value.startswith("\\0"):  # uWSGI's other spelling of an abstract socket
        return _unix(text, "@" + value[2:])
    if ":" in value:
        return _tcp(text, value, False)
    return _unix(text, value)


def _unix(text: str, path: str) -> StatsAddress:
    if not path or path == "@":
        raise StatsError(f"{text!r}: no socket path")
    if path.startswith("@"):
        path = "\0" + path[1:]
    return StatsAddress(text, socket.AF_UNIX, path=path)


def _tcp(text: str, hostport: str, http_hint: bool) -> StatsAddress:
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise StatsError(f"{text!r}: expected host:port with a port from 1 to 65535")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    # uWSGI binds ":9191" and "0.0.0.0:9191" on every interface: connect locally
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}.get(host, host)
    return StatsAddress(text, socket.AF_INET6 if ":" in host else socket.AF_INET, host=host, port=int(port_text),
                        http_hint=http_hint)


@dataclass
class StatsReading:
    """What the server sent and how it was read."""

    address: StatsAddress
    protocol: str  # "json" (plain stats socket) or "http" (--stats-http)
    data: dict[str, Any]

    def describe(self) -> str:
        kind = "--stats-http" if self.protocol == "http" else "plain stats socket"
        return f"{self.address.text} ({self.address.kind}, {kind})"


def read_stats(address: str | StatsAddress, timeout: float = 5.0, probe: float = PROBE_SECONDS) -> StatsReading:
    """Connect, detect the protocol, return the server's JSON (or raise :class:`StatsError`)."""
    parsed = address if isinstance(address, StatsAddress) else parse_address(address)
    if parsed.http_hint:
        try:
            return _read(parsed, timeout, send_request=True)
        except StatsError as exc:
            if not _sent_to_plain_socket(exc):
                raise
    try:
        return _read(parsed, timeout, send_request=False, probe=probe)
    except StatsError as exc:
        if not _sent_to_plain_socket(exc):
            raise
    # a plain stats socket slower than the probe: wait for it to speak
    return _read(parsed, timeout, send_request=False, probe=timeout)


def _sent_to_plain_socket(exc: StatsError) -> bool:
    """A plain stats socket does not read: a request sent to it may reset or break the connection."""
    return isinstance(exc.__cause__, (ConnectionResetError, BrokenPipeError))


def _read(address: StatsAddress, timeout: float, *, send_request: bool, probe: float = 0.0) -> StatsReading:
    with address.connect(timeout) as sock:
        try:
            if not send_request:
                readable, _, _ = select.select([sock], [], [], probe)
                send_request = not readable  # silent: it waits for a request (--stats-http)
            if send_request:
                host = address.host if address.family != socket.AF_UNIX else "localhost"
                sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
            raw = _read_all(sock)
        except TimeoutError as exc:
            raise StatsError(f"{address.text}: no answer in {timeout:g} s") from exc
        except OSError as exc:
            raise StatsError(f"{address.text}: {exc}") from exc
    protocol = "json"
    if raw.startswith(b"HTTP/"):
        protocol = "http"
        head, _, raw = raw.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status.split()[1:2] != ["200"]:
            raise StatsError(f"{address.text} answered {status!r}, not uWSGI's stats")
    if not raw.strip():
        raise StatsError(f"{address.text} closed the connection without sending stats: is it uWSGI's stats server?")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        start = raw[:40].decode("latin-1")
        raise StatsError(f"{address.text} did not send uWSGI stats JSON (it sent {start!r}...)") from exc
    if not isinstance(data, dict):
        raise StatsError(f"{address.text} did not send uWSGI stats JSON (not an object)")
    return StatsReading(address, protocol, data)


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
