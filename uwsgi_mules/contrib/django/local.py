"""What offloads do outside uWSGI (``manage.py runserver``, ``shell``, scripts).

``UWSGI_MULES["LOCAL_MODE"]``:

* ``"inline"`` (the default): each offload is encoded, decoded and run at
  once in the calling thread, as the mule that would take it, before the
  call returns. Arguments that a mule could not receive fail as they would
  under uWSGI; the task's exceptions are logged, not raised (except a
  ``KeyboardInterrupt``, which reaches the caller as with Django's
  ``ImmediateBackend``).
* ``"fake"``: a threaded :class:`~uwsgi_mules.fake.FakeUwsgi` with the
  project's layout; every mule is a thread that runs its program, so tasks
  run in the background as under uWSGI.
* ``"off"``: nothing; offloading raises
  :class:`~uwsgi_mules.errors.BackendUnavailable`.

Nothing is activated under uWSGI or when another backend (the
``uwsgi_fake`` fixture, the drop-in module) is already active.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...backends.base import Backend, MuleTarget
from ...backends.selection import activate, current_backend
from ...errors import BackendUnavailable
from ...fake import FakeUwsgi
from ...layout.topology import Topology
from .conf import MulesSettings, get_settings

__all__ = ["InlineUwsgi", "ensure_local_backend", "local_backend", "make_local_backend", "topology_from_settings"]


class InlineUwsgi(FakeUwsgi):
    """A fake uWSGI that runs each message right after it is queued, in the
    sending thread (one message at a time across threads). A
    ``KeyboardInterrupt`` raised by a task reaches the caller (as with
    Django's ``ImmediateBackend``), once the message is finished."""

    #: a task's KeyboardInterrupt goes to the caller (a mule would survive it)
    lets_interrupts_through = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inline_lock = threading.RLock()
        self._inline = threading.local()

    def mule_msg(self, message: bytes | str, target: MuleTarget = None) -> bool:
        with self._inline_lock:
            queued = super().mule_msg(message, target)
            if queued:
                self._run_now()
            return queued

    def farm_msg(self, farm: str, message: bytes | str) -> None:
        with self._inline_lock:
            super().farm_msg(farm, message)
            self._run_now()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Messages queued inside the block run when it ends without an
        exception (Django tasks: ``task_enqueued`` is sent before the task runs)."""
        with self._inline_lock:
            if getattr(self._inline, "running", False):
                yield  # inside a task: the outer run takes them
                return
            self._inline.running = True
            try:
                yield
            finally:
                self._inline.running = False
            self._run_now()

    def _run_now(self) -> None:
        if getattr(self._inline, "running", False):
            return  # a task offloads another: the outer run_pending() takes it
        self._inline.running = True
        try:
            self.run_pending()
        finally:
            self._inline.running = False
        interrupt = getattr(self._inline, "interrupt", None)
        if interrupt is not None:
            self._inline.interrupt = None
            raise interrupt

    def report_task_error(self, exc: BaseException, description: str) -> None:
        """Log like a mule does (without keeping every error in memory); a
        ``KeyboardInterrupt`` is kept for the caller instead."""
        if isinstance(exc, KeyboardInterrupt):
            self._inline.interrupt = exc
            return
        Backend.report_task_error(self, exc, description)


class _LocalThreadedUwsgi(FakeUwsgi):
    """The threaded fake of ``LOCAL_MODE = "fake"``: errors are logged only."""

    def report_task_error(self, exc: BaseException, description: str) -> None:
        Backend.report_task_error(self, exc, description)


def topology_from_settings(settings: MulesSettings | None = None) -> Topology:
    """The mule/farm layout that ``UWSGI_MULES`` describes."""
    settings = settings or get_settings()
    return Topology.build(
        list(settings.mules),
        settings.farms_dict,
        msg_size=settings.msg_buffer,
        recv_size=settings.msg_buffer_recv,
        source="settings.UWSGI_MULES",
    )


def make_local_backend(settings: MulesSettings | None = None) -> FakeUwsgi | None:
    """A new, inactive backend for ``LOCAL_MODE`` (None for ``"off"``)."""
    from .tasks.settings import results_caches

    settings = settings or get_settings()
    topology = topology_from_settings(settings)
    caches = [results.spec for results in results_caches()]  # Django task results
    if settings.local_mode == "inline":
        return InlineUwsgi(topology=topology, caches=caches)
    if settings.local_mode == "fake":
        return _LocalThreadedUwsgi(topology=topology, caches=caches)
    return None


_lock = threading.Lock()
_local: FakeUwsgi | None = None


def local_backend() -> FakeUwsgi | None:
    """The backend :func:`ensure_local_backend` activated, if any."""
    return _local


def ensure_local_backend() -> FakeUwsgi | None:
    """Activate the ``LOCAL_MODE`` backend unless a backend is available
    (real uWSGI, an active fake); return it when it was (re)activated."""
    global _local
    settings = get_settings()
    if settings.local_mode == "off":
        return None
    try:
        current_backend()
        return None
    except BackendUnavailable:
        pass
    with _lock:
        try:
            current_backend()
            return None
        except BackendUnavailable:
            pass
        if _local is None or isinstance(_local, InlineUwsgi) != (settings.local_mode == "inline"):
            _local = make_local_backend(settings)
        assert _local is not None
        activate(_local)
        if settings.local_mode == "fake":
            _local.start()
        return _local


def ensure_local_backend_on_request(**kwargs: Any) -> None:
    """``request_started`` receiver: re-activate the local backend when a test
    fixture or ``reset_backends()`` removed it."""
    ensure_local_backend()
