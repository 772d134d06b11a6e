"""``MulesBackend``: Django's task framework on uWSGI mules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.utils.module_loading import import_string

from ....backends.base import Backend
from ....backends.selection import current_backend
from ....core.hook import ensure_hook
from ....core.state import runtime_state
from ....errors import TopologyError, UnknownFarm, UnknownMule
from ....runtime.later import send_call_at
from ....runtime.offload import register_task
from ....runtime.routing import route_table
from ....runtime.sender import Route, prepare_route, send_routed
from ....runtime.targets import Target, farm_target, mule_target, validate
from .calls import TaskHeader
from .compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    set_field,
    task_enqueued,
)
from .options import BackendOptions, TargetSetting, default_target, parse_options
from .records import READY, ResultStore, TaskRecord, new_id
from .runner import PATH_PREFIX, TaskRunner, registry_path


class MulesBackend(BaseTaskBackend):
    """Runs ``@task`` functions on uWSGI mules (``TASKS[...]["BACKEND"]``).

    ``enqueue()`` stores a READY result in the results cache and queues a
    signed message for the queue's target (the shared queue, a mule or a
    farm); a mule runs the task and records RUNNING, then SUCCESSFUL or
    FAILED. A task with ``run_after`` is queued at once with its due time
    (:func:`~uwsgi_mules.runtime.later.send_call_at`): the mule holds it in
    its durable waiting room and runs it then, never before. Results are read with ``get_result()`` from any process of the
    instance until they expire. See docs/django.md, "Django tasks".
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.mules_options: BackendOptions = parse_options(alias, params.get("OPTIONS"))
        self._routes: dict[str, tuple[Backend, Route]] = {}
        self._targets: dict[str, Target] = {}  # queue -> target, as enqueue() resolved it
        self._stores: tuple[Backend, ResultStore] | None = None

    # -- tasks ------------------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Django's checks (the capability flags as they are now), then register
        the task for the mules (every process that defines it can run it;
        nothing else can) with the backend's retry policy."""
        super().validate_task(task)
        path = registry_path(task)
        found = runtime_state().registry.tasks.get(path)
        runner = found if isinstance(found, TaskRunner) and found.task.func is task.func else TaskRunner(task)
        register_task(path, runner, self.mules_options.retry)

    def registered_task(self, module_path: str) -> Task:
        """The ``Task`` defined at ``module_path`` (registered, or imported)."""
        runner = runtime_state().registry.tasks.get(PATH_PREFIX + module_path)
        if isinstance(runner, TaskRunner):
            return runner.task
        found = import_string(module_path)
        if not isinstance(found, Task):
            raise TaskResultDoesNotExist(f"{module_path} is not a task")
        return found

    # -- queues -> targets ------------------------------------------------------------------

    def target_setting(self, queue: str) -> TargetSetting | None:
        """Where ``queue`` goes, as the settings say (None: nowhere)."""
        from ..conf import get_settings

        found = self.mules_options.targets.get(queue)
        if found is not None:
            return found
        return default_target(queue, get_settings().farms_dict)

    def target(self, queue: str) -> Target:
        setting = self.target_setting(queue)
        if setting is None:
            raise InvalidTask(
                f"queue {queue!r} of task backend {self.alias!r} has no target: name it 'default' (the shared "
                "queue), 'mule<N>' or like a farm, or map it in OPTIONS['TARGETS']"
            )
        return farm_target(setting) if isinstance(setting, str) else mule_target(setting)

    def _target(self, queue: str) -> Target:
        """:meth:`target`, remembered per queue (enqueue's path: the settings are read once)."""
        found = self._targets.get(queue)
        if found is None:
            found = self._targets[queue] = self.target(queue)
        return found

    def _route(self, backend: Backend, queue: str) -> Route:
        found = self._routes.get(queue)
        if found is not None and found[0] is backend:
            return found[1]
        target = self._target(queue)
        ensure_hook(backend)
        route = prepare_route(backend, target)  # UnknownMule / UnknownFarm
        self._routes[queue] = (backend, route)
        return route

    # -- results ----------------------------------------------------------------------------

    def result_store(self, backend: Backend) -> ResultStore:
        found = self._stores
        if found is None or found[0] is not backend:
            found = (backend, ResultStore(backend, self.mules_options.results))
            self._stores = found
        return found[1]

    def to_task_result(self, record: TaskRecord, task: Task | None = None) -> TaskResult:
        """Django's ``TaskResult`` of a record."""
        task = task or self.registered_task(record.task_path)
        run_after = _datetime(record.run_after)
        if (task.queue_name, task.priority, task.run_after, task.backend) != (
            record.queue_name, record.priority, run_after, record.backend
        ):
            task = dataclasses.replace(
                task, queue_name=record.queue_name, priority=record.priority, run_after=run_after,
                backend=record.backend,
            )
        result = TaskResult(
            task=task,
            id=record.id,
            status=TaskResultStatus(record.status),
            enqueued_at=_datetime(record.enqueued_at),
            started_at=_datetime(record.started_at),
            finished_at=_datetime(record.finished_at),
            last_attempted_at=_datetime(record.last_attempted_at),
            args=record.args,
            kwargs=record.kwargs,
            backend=record.backend,
            errors=[TaskError(exception_class_path=path, traceback=text) for path, text in record.errors],
            worker_ids=list(record.worker_ids),
        )
        set_field(result, "_return_value", record.return_value)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The task's result as the cache holds it now (for a task sent to
        Celery, as Celery's result backend has it); ``TaskResultDoesNotExist``
        for an unknown or expired id."""
        record = self.result_store(current_backend()).read(result_id) if isinstance(result_id, str) else None
        if record is None or record.backend != self.alias:
            raise TaskResultDoesNotExist(result_id)
        if record.remote_id is not None:
            from .celery_route import merge_celery_state

            record = merge_celery_state(record, route_table().lookup(self._target(record.queue_name)))
        return self.to_task_result(record)

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Store a READY result, queue the message, send ``task_enqueued``;
        return the READY ``TaskResult`` (in ``LOCAL_MODE = "inline"``, the
        finished one: the task ran before ``enqueue()`` returns). Raises what an offload raises
        (``QueueFull``, ``MessageTooLarge``, ``UnknownFarm``...), and
        ``TypeError`` for arguments that are not JSON, before anything is sent."""
        self.validate_task(task)
        now = current_backend().wall_time()
        result = TaskResult(
            task=task, id=new_id(now), status=TaskResultStatus.READY, enqueued_at=_datetime(now),
            started_at=None, finished_at=None, last_attempted_at=None, args=args, kwargs=kwargs,
            backend=self.alias, errors=[], worker_ids=[],
        )
        header = TaskHeader(result.id, self.alias, task.queue_name, task.priority, _timestamp(task.run_after), now)
        send = self._sender(task, header, result)
        if self.mules_options.on_commit:
            from django.db import transaction

            transaction.on_commit(send)
            return result
        send()
        return self._ran_inline(task, result)

    def _ran_inline(self, task: Task, result: TaskResult) -> TaskResult:
        """In ``LOCAL_MODE = "inline"`` the task has run: its finished result
        (as Django's ``ImmediateBackend`` returns); else ``result``."""
        backend = current_backend()
        if not hasattr(backend, "holding"):
            return result
        record = self.result_store(backend).read(result.id)
        return self.to_task_result(record, task) if record is not None else result

    def _sender(self, task: Task, header: TaskHeader, result: TaskResult) -> Callable[[], None]:
        """Encode everything now (what cannot be sent raises here); the
        returned function stores the READY result, sends, and signals."""
        backend = current_backend()
        remote = route_table().lookup(self._target(header.queue_name))
        if remote is not None:  # UWSGI_MULES["ROUTES"] sends this queue to Celery
            return self._remote_sender(task, dataclasses.replace(header, remote=True), result, remote, backend)
        route = self._route(backend, header.queue_name)
        path = registry_path(task)
        call = (header.wire(), result.args, result.kwargs)
        retries = self.mules_options.retry.retries
        meta = {"retries": retries} if retries else None  # re-run after a crash or a RETRY_ON error
        if header.run_after is None:
            payload = backend.signer().seal_call(path, call, {}, route.raw if route.raw is not None else 0, meta)
        record = TaskRecord(
            id=header.id, task_path=task.module_path, backend=self.alias, queue_name=header.queue_name,
            priority=header.priority, run_after=header.run_after, status=READY, enqueued_at=header.enqueued_at,
            args=result.args, kwargs=result.kwargs,
        )
        store = self.result_store(backend)
        value = store.sealed(record)  # too large for the results cache: raises before anything is sent

        holding = getattr(backend, "holding", nullcontext)  # inline: the task runs after task_enqueued

        def send() -> None:
            store.write(record, new=True, value=value)
            with holding():
                try:
                    if header.run_after is None:
                        send_routed(backend, payload, route)
                    else:  # the one durable "run at T" of offload_at()
                        send_call_at(route.target, path, call, {}, header.run_after, meta)
                except BaseException:
                    store.delete(record.id)
                    raise
                task_enqueued.send(type(self), task_result=result)

        return send

    def _remote_sender(self, task: Task, header: TaskHeader, result: TaskResult, remote: Any,
                       backend: Backend) -> Callable[[], None]:
        """The same task through a Celery route: the record keeps Celery's id
        (``run_after``: published with Celery's ``eta``)."""
        if header.run_after is not None and not hasattr(remote, "submit_at"):
            raise InvalidTask(f"queue {header.queue_name!r} goes to {remote.describe()}: it cannot run later")
        record = TaskRecord(
            id=header.id, task_path=task.module_path, backend=self.alias, queue_name=header.queue_name,
            priority=header.priority, run_after=header.run_after, status=READY, enqueued_at=header.enqueued_at,
            args=result.args, kwargs=result.kwargs,
        )
        store = self.result_store(backend)
        store.sealed(record)  # too large for the results cache: raises before anything is sent

        def send() -> None:
            call = (header.wire(), result.args, result.kwargs)
            if header.run_after is None:
                handle = remote.submit(registry_path(task), call, {})
            else:
                handle = remote.submit_at(registry_path(task), call, {}, header.run_after)
            record.remote_id = handle.id
            store.write(record, new=True)
            task_enqueued.send(type(self), task_result=result)

        return send

    # -- checks -----------------------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Every queue has a target that the layout of ``UWSGI_MULES`` has
        (or that ``ROUTES`` sends to Celery)."""
        from ..conf import get_settings
        from ..local import topology_from_settings

        errors: list[checks.CheckMessage] = []
        mules_settings = get_settings()
        try:
            topology = topology_from_settings(mules_settings)
        except TopologyError as exc:
            return [checks.Error(str(exc), id="uwsgi_mules.E101")]
        routed = {target for target, _app, _queue in mules_settings.routes}
        for queue in sorted(self.queues):
            try:
                target = self.target(queue)
            except InvalidTask as exc:
                errors.append(checks.Error(str(exc), id="uwsgi_mules.E102"))
                continue
            if (target.farm if target.kind == "farm" else target.mule_id) in routed:
                continue  # sent to Celery
            try:
                validate(target, topology)
            except (UnknownMule, UnknownFarm) as exc:
                errors.append(checks.Error(
                    f"queue {queue!r} of task backend {self.alias!r} goes to {target.describe()}: {exc}",
                    id="uwsgi_mules.E103",
                ))
        return errors


def _datetime(value: float | None) -> datetime | None:
    if value is None:
        return None
    if django_settings.USE_TZ:
        return datetime.fromtimestamp(value, tz=dt_timezone.utc)
    return datetime.fromtimestamp(value)


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()
