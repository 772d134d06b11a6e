"""A Celery worker inside a uWSGI mule: ``mule = uwsgi_mules.contrib.celery.mule:run``.

The Celery app comes from ``UWSGIMULES_CELERY_APP=pkg.module:app``; the
worker consumes the queues of the mule's farms (``mule<N>`` for a mule in
no farm; ``UWSGIMULES_CELERY_QUEUES=a,b`` overrides). It runs the solo pool
in the mule process itself, so uWSGI supervises it: a dead mule is
respawned, a reload (SIGHUP to mules) or a stop (SIGTERM) is a Celery warm
shutdown (the running task finishes, then the mule exits), and a mule
killed mid-task leaves its message unacknowledged for redelivery.

Harakiri: the solo pool cannot enforce Celery's ``time_limit``; the mule
arms uWSGI's user harakiri for each task instead, from the task's
``time_limit``, else ``task_time_limit``, else ``UWSGIMULES_CELERY_HARAKIRI``
(seconds). The master SIGKILLs a mule past it and respawns it; the task's
message is redelivered (acks_late), so a task that always hangs comes back.
"""

from __future__ import annotations

import importlib
import os
import socket
from typing import Any

from ...backends.selection import current_backend
from ...errors import NotInMule
from .task import install

APP_ENV = "UWSGIMULES_CELERY_APP"
QUEUES_ENV = "UWSGIMULES_CELERY_QUEUES"
HARAKIRI_ENV = "UWSGIMULES_CELERY_HARAKIRI"


def _getenv(name: str) -> str | None:
    value = os.environ.get(name)
    if value:
        return value
    try:  # pyuwsgi: uWSGI's ``env`` option only reaches the C environment
        from ...backends.process_env import process_getenv
    except ImportError:  # pragma: no cover
        return None
    return process_getenv(name)


def load_app(spec: str | None = None) -> Any:
    """The Celery app named ``pkg.module:attr`` (default: ``$UWSGIMULES_CELERY_APP``)."""
    spec = spec or _getenv(APP_ENV)
    if not spec or ":" not in spec:
        raise RuntimeError(f"set {APP_ENV}=pkg.module:app (the Celery app) for the Celery mule, got {spec!r}")
    module_name, _, attr = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def mule_queues(mule_id: int) -> list[str]:
    """The Celery queues of mule ``mule_id``: its farms, else ``mule<N>``."""
    override = _getenv(QUEUES_ENV)
    if override:
        return [q.strip() for q in override.split(",") if q.strip()]
    topology = current_backend().topology()
    farms = list(topology.farms_of(mule_id)) if topology is not None else []
    return farms or [f"mule{mule_id}"]


def worker_options(app: Any, mule_id: int) -> dict[str, Any]:
    """Keyword arguments of ``app.Worker`` for a mule."""
    return {
        "queues": mule_queues(mule_id),
        "pool_cls": "solo",
        "concurrency": 1,
        "hostname": f"mule{mule_id}.{os.getpid()}@{socket.gethostname()}",
        "without_gossip": True,
        "without_mingle": True,
        "loglevel": _getenv("UWSGIMULES_CELERY_LOGLEVEL") or "WARNING",
    }


def connect_harakiri(app: Any, backend: Any) -> None:
    """Arm uWSGI's user harakiri around every task this mule runs."""
    from celery import signals

    default = app.conf.task_time_limit or float(_getenv(HARAKIRI_ENV) or 0)

    def armed(sender: Any = None, **_: Any) -> None:
        limit = getattr(sender, "time_limit", None) or default
        if limit:
            backend.set_user_harakiri(max(1, int(limit + 0.999)))

    def disarmed(**_: Any) -> None:
        backend.set_user_harakiri(0)

    signals.task_prerun.connect(armed, weak=False)
    signals.task_postrun.connect(disarmed, weak=False)


def run() -> None:
    """Run a Celery worker in this mule until a warm shutdown."""
    backend = current_backend()
    mule_id = backend.mule_id()
    if not mule_id:
        raise NotInMule("the Celery mule entry point runs only in a uWSGI mule")
    app = load_app()
    install(app)
    options = worker_options(app, mule_id)
    backend.log(f"uwsgi-mules: mule {mule_id} runs a Celery worker for queues {options['queues']}")

    from celery.apps.worker import install_worker_term_handler

    class MuleWorker(app.Worker):  # type: ignore[name-defined]
        def install_platform_tweaks(self, worker: Any) -> None:
            super().install_platform_tweaks(worker)
            # uWSGI reloads mules with SIGHUP: a warm shutdown (Celery would exec itself)
            install_worker_term_handler(worker, sig="SIGHUP")

    connect_harakiri(app, backend)
    worker = MuleWorker(app=app, **options)
    worker.start()
    backend.log(f"uwsgi-mules: Celery worker of mule {mule_id} stopped (exit code {worker.exitcode})")
