"""Start and always stop a real uWSGI server for tests.

The ``uwsgi`` command is taken from the running interpreter's environment
(the binary of the ``uwsgi`` package, or the launcher of ``pyuwsgi``), so a
tox environment tests exactly what it installed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from .records import complete_lines

REPO_ROOT = Path(__file__).resolve().parents[2]


def uwsgi_command() -> str | None:
    """Path of the ``uwsgi`` command of this environment, or None."""
    local = Path(sys.executable).parent / "uwsgi"
    if local.exists():
        return str(local)
    return shutil.which("uwsgi")


def uwsgi_flavour() -> str | None:
    """``"pyuwsgi"`` when the command is the pyuwsgi launcher, ``"uwsgi"`` for
    the compiled binary, None when neither is installed."""
    command = uwsgi_command()
    if command is None:
        return None
    with open(command, "rb") as fh:
        head = fh.read(2)
    return "pyuwsgi" if head == b"#!" else "uwsgi"


WORKER_READY = "uwsgi-mules-test: worker ready"
MULE_READY = "uwsgi-mules-test: mule ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UwsgiServer:
    """A real uWSGI instance on 127.0.0.1 with its own temp dir.

    Use as a context manager: it starts with ``--die-on-term`` and is
    stopped (SIGTERM, then SIGKILL of its process group) on exit.
    """

    def __init__(
        self,
        workdir: Path,
        args: Sequence[str] = (),
        *,
        ini: Path | None = None,
        env: dict[str, str] | None = None,
        http: bool = True,
        start_timeout: float = 30.0,
        cwd: Path | None = None,
        die_on_term: bool = True,
        venv_site_on_path: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.cwd = Path(cwd) if cwd is not None else self.workdir
        self.port = free_port() if http else None
        self.log_path = self.workdir / "uwsgi.log"
        self.args = list(args)
        self.ini = ini
        self.env = dict(env or {})
        self.start_timeout = start_timeout
        self.die_on_term = die_on_term
        #: put this environment's site-packages on PYTHONPATH (see start());
        #: False runs pyuwsgi as a user's virtualenv does, with nothing added
        self.venv_site_on_path = venv_site_on_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = uwsgi_command()
        if command is None:
            raise RuntimeError("no uwsgi command in this environment")
        argv = [command]
        if self.ini is not None:
            argv += ["--ini", str(self.ini)]
        argv += ["--master", "--strict"] + (["--die-on-term"] if self.die_on_term else [])
        # uWSGI ignores SIGTERM/SIGINT in a worker or mule for a few ms after
        # fork, until it installs its handlers; a stop landing there leaves the
        # process running. These hooks log once the handlers are in place, and
        # start() waits for every worker and mule to log them.
        argv += ["--hook-accepting", f"log:{WORKER_READY}", "--hook-as-mule", f"log:{MULE_READY}"]
        if self.port is not None:
            argv += ["--http-socket", f"127.0.0.1:{self.port}"]
        return argv + self.args

    def start(self) -> UwsgiServer:
        # uWSGI reads UWSGI_* environment variables as options: pass none through
        env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
        # pyuwsgi's binary reload re-executes the base interpreter, which does
        # not know this virtual environment, unless binary-path names the
        # environment's interpreter: give it the environment's packages
        paths = sysconfig.get_paths()
        site = [paths["purelib"], paths["platlib"]] if self.venv_site_on_path else []
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(REPO_ROOT), str(self.workdir), env.get("PYTHONPATH", ""), *site] if p
        )
        env["MULES_TEST_DIR"] = str(self.workdir)
        env.update(self.env)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"uWSGI exited with {self.process.returncode}:\n{self.log_text()}")
            if self._all_processes_ready():
                if self.port is None:
                    return
                with contextlib.suppress(OSError):
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"uWSGI not ready in {self.start_timeout}s:\n{self.log_text()}")

    def _all_processes_ready(self) -> bool:
        lines = complete_lines(self.log_text())  # uWSGI may be mid-line
        workers = sum(1 for ln in lines if ln.startswith("spawned uWSGI worker "))
        mules = sum(1 for ln in lines if ln.startswith("spawned uWSGI mule "))
        return (
            workers > 0
            and sum(1 for ln in lines if ln == WORKER_READY) >= workers
            and sum(1 for ln in lines if ln == MULE_READY) >= mules
        )

    def get(self, path: str, timeout: float = 60.0) -> bytes:
        with urllib.request.urlopen(self.base_url + path, timeout=timeout) as response:
            return response.read()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not in the uWSGI log after {timeout}s:\n{self.log_text()}")

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            # only the master: it stops its workers and mules itself (a second
            # signal to a busy worker can deadlock its exit())
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM if self.die_on_term else signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # mules and workers die with the master (PDEATHSIG); make sure of it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self._log.close()
        self.process = None

    def __enter__(self) -> UwsgiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_uwsgi(workdir: Path, args: Sequence[str] = (), **kwargs: object) -> Iterator[UwsgiServer]:
    server = UwsgiServer(workdir, args, **kwargs)  # type: ignore[arg-type]
    with server:
        yield server
