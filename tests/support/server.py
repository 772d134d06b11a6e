"""Start and always stop a real uWSGI server for tests.

The ``uwsgi`` command is the one this interpreter's environment installed:
the compiled binary of the ``uwsgi`` package, or the launcher of ``pyuwsgi``
(when ``pyuwsgi`` imports here), in the environment's own scripts directory.
A command found on ``PATH`` is never used, so a tox environment tests exactly
what it installed and one without uWSGI skips the real-server tests.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from .records import complete_lines

REPO_ROOT = Path(__file__).resolve().parents[2]

#: what uWSGI logs when another process took its port first (free_port() races)
PORT_TAKEN = "Address already in use"
#: how often start() picks a new port after PORT_TAKEN
PORT_ATTEMPTS = 3


def environment_scripts() -> Path:
    """The scripts directory of the running interpreter's environment (a venv's ``bin``)."""
    return Path(sysconfig.get_path("scripts"))


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


class _Refusal:
    """Why looking for uWSGI or for the C plugin is refused right now (None: allowed)."""

    uwsgi: str | None = None
    plugin: str | None = None


@contextlib.contextmanager
def refuse_uwsgi(reason: str) -> Iterator[None]:
    """Within the block, :func:`uwsgi_command` raises ``RuntimeError(reason)``
    (the test suite wraps every test not marked ``real`` in it)."""
    previous, _Refusal.uwsgi = _Refusal.uwsgi, reason
    try:
        yield
    finally:
        _Refusal.uwsgi = previous


@contextlib.contextmanager
def refuse_plugin(reason: str) -> Iterator[None]:
    """Within the block, :func:`plugin_path` raises ``RuntimeError(reason)``
    (the test suite wraps every test not marked ``plugin`` in it)."""
    previous, _Refusal.plugin = _Refusal.plugin, reason
    try:
        yield
    finally:
        _Refusal.plugin = previous


def uwsgi_command() -> str | None:
    """Path of the ``uwsgi`` command this environment installed, or None.

    Only ``<environment scripts>/uwsgi`` counts, and only when this
    interpreter has the ``uwsgi`` distribution (the binary) or an importable
    ``pyuwsgi`` (its launcher): never a command found on ``PATH``."""
    if _Refusal.uwsgi is not None:
        raise RuntimeError(_Refusal.uwsgi)
    command = environment_scripts() / "uwsgi"
    if not command.is_file():
        return None
    if _is_launcher(command):
        return str(command) if importlib.util.find_spec("pyuwsgi") is not None else None
    return str(command) if _installed("uwsgi") else None


def _is_launcher(command: Path) -> bool:
    """True for a Python script (pyuwsgi's ``#!`` launcher), False for a compiled binary."""
    with open(command, "rb") as fh:
        return fh.read(2) == b"#!"


def uwsgi_flavour() -> str | None:
    """``"pyuwsgi"`` when the command is the pyuwsgi launcher, ``"uwsgi"`` for
    the compiled binary, None when this environment installed neither."""
    command = uwsgi_command()
    if command is None:
        return None
    return "pyuwsgi" if _is_launcher(Path(command)) else "uwsgi"


WORKER_READY = "uwsgi-mules-test: worker ready"
MULE_READY = "uwsgi-mules-test: mule ready"


def mules_on_command_line(args: Sequence[str]) -> int:
    """How many mules ``--mule``/``--mule=...`` and ``--mules N`` in ``args`` ask for."""
    count = 0
    for index, word in enumerate(args):
        if word == "--mule" or word.startswith("--mule="):
            count += 1
        elif word.startswith("--mules="):
            count += int(word.partition("=")[2])
        elif word == "--mules" and index + 1 < len(args):
            count += int(args[index + 1])
    return count


class PortTaken(RuntimeError):
    """uWSGI could not bind the free port it was given: another process took it first."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the caller binds it
    later, so a parallel test may take it first: see :class:`PortTaken`)."""
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
        start_timeout: float = 60.0,
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
        """Start uWSGI and wait until every worker and mule is ready; when
        another process took the port between :func:`free_port` and uWSGI's
        bind, start again on a new port."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._launch()
            try:
                self.wait_ready()
                return self
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                self.port = free_port()
        return self

    def _launch(self) -> None:
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

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.log_text()
                self.stop()
                if self.port is not None and PORT_TAKEN in log:
                    raise PortTaken(f"port {self.port} was taken before uWSGI bound it:\n{log}")
                raise RuntimeError(f"uWSGI exited:\n{log}")
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
        # the master may spawn mules after a worker is ready: wait at least for
        # the mules of the command line (those of an INI show up in the log)
        mules = max(sum(1 for ln in lines if ln.startswith("spawned uWSGI mule ")), mules_on_command_line(self.args))
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


def plugin_path() -> str | None:
    """The C plugin that real-server tests load (``UWSGIMULES_TEST_PLUGIN``,
    set by the tox env ``plugin``), or None."""
    if _Refusal.plugin is not None:
        raise RuntimeError(_Refusal.plugin)
    path = os.environ.get("UWSGIMULES_TEST_PLUGIN")
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"UWSGIMULES_TEST_PLUGIN={path} does not exist (build it: python plugin/build.py DIR)")
    if not path and os.environ.get("UWSGIMULES_REQUIRE_PLUGIN") == "1":
        raise RuntimeError("UWSGIMULES_REQUIRE_PLUGIN=1 but UWSGIMULES_TEST_PLUGIN is not set")
    return path or None
