"""Fixtures of the Celery tests: a private ``redis-server`` per session.

Without Celery the tests skip with the reason, except under
``UWSGIMULES_REQUIRE_CELERY=1`` (the tox env ``celery``). Without
``redis-server`` (Debian package ``redis-server``) they skip, except under
``UWSGIMULES_REQUIRE_REAL=1`` or ``UWSGIMULES_REQUIRE_CELERY=1``, where a
missing component fails the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import free_port


def _celery_required() -> bool:
    return os.environ.get("UWSGIMULES_REQUIRE_CELERY") == "1"


def _redis_required() -> bool:
    return os.environ.get("UWSGIMULES_REQUIRE_REAL") == "1" or _celery_required()


def require_celery() -> None:
    """Skip (or fail where required) when Celery and redis-py are not installed."""
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        if _celery_required():
            pytest.fail(f"Celery tests required but celery[redis] is not installed: {exc}")
        pytest.skip(
            f"celery[redis] is not installed ({exc}); pip install 'uwsgi-mules[celery]'", allow_module_level=True
        )


class RedisServer:
    """A private ``redis-server`` on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        command = shutil.which("redis-server")
        assert command is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.workdir / "redis.log", "wb")
        self.process = subprocess.Popen(
            [command, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server not ready in {timeout}s")

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self._log.close()
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the session (flushed by ``redis_url``)."""
    if shutil.which("redis-server") is None:
        if _redis_required():
            pytest.fail("Celery tests required but redis-server is not installed (Debian package redis-server)")
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's redis-server, emptied for this test."""
    require_celery()
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return server.url
