"""Messages past their delivery limit on RabbitMQ become dead-task records.

A route's quorum queue dead-letters a message delivered ``x-delivery-limit``
times (a task that killed its worker, or whose worker was lost, every time)
to the queue :data:`~.rabbitmq.DEAD_LETTER_QUEUE`, at least once. Every
Celery worker of an app routed on RabbitMQ runs :class:`DeadLetterStep`, a
consumer of that queue: it writes each message as a dead-task record
(``uwsgi-mules dead`` lists them, ``--show`` prints one) and acknowledges it
once the record is on disk; a message that cannot be recorded stays in the
queue (logged). Nothing runs the task again by itself: no loop.

``uwsgi-mules dead --resend`` moves chosen records to ``<dir>/dead/resend/``;
the step publishes those calls to their route again (about once a second).

``<dir>``: ``UWSGIMULES_BACKLOG_DIR``, else ``UWSGIMULES_RUNTIME_DIR``, else
``<tmp>/uwsgi-mules-<uid>/celery-<app name>`` (where ``uwsgi-mules dead``
looks by default).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ... import envelope
from ...instance import BACKLOG_DIR_ENV, RUNTIME_DIR_ENV
from ...mule.delivery.backlog import CLAIMED, claim, load
from ...mule.delivery.dead import DeadStore, resend_dir
from ...runtime.routing import route_table
from ...runtime.targets import Target
from .rabbitmq import dead_letter_queue
from .task import TASK_NAME

logger = logging.getLogger("uwsgi_mules.celery.dead")
#: seconds between looks at ``<dir>/dead/resend/``
RESEND_INTERVAL = 1.0


def dead_base(app: Any) -> Path:
    """Where the worker keeps the dead tasks of ``app`` (see the module's doc)."""
    for name in (BACKLOG_DIR_ENV, RUNTIME_DIR_ENV):
        value = os.environ.get(name)
        if value:
            return Path(value)
    return Path(tempfile.gettempdir()) / f"uwsgi-mules-{os.getuid()}" / f"celery-{app.main or 'app'}"


def _target_of_queue(queue: str) -> Target | None:
    """The routed target whose Celery queue is ``queue`` (a ``CeleryRoute``'s ``queue``)."""
    for target, route in route_table().items():
        if getattr(route, "queue", None) == queue:
            return target
    return None


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death") or []
    return dict(deaths[0]) if deaths and isinstance(deaths[0], dict) else {}


def record_dead_letter(store: DeadStore, body: Any, message: Any) -> Any:
    """Write the dead-task record of one dead-lettered Celery message; returns it.

    Raises :class:`ValueError` for a message that is not the offload task."""
    headers = dict(message.headers or {})
    if headers.get("task") != TASK_NAME:
        raise ValueError(f"not an uwsgi-mules offload (task {headers.get('task')!r})")
    call_args = body[0] if isinstance(body, (list, tuple)) else None
    if not isinstance(call_args, (list, tuple)) or len(call_args) != 3:
        raise ValueError("the message's arguments are not (path, args, kwargs)")
    path, args, kwargs = str(call_args[0]), tuple(call_args[1]), dict(call_args[2])
    death = _first_death(headers)
    queue = str(death.get("queue") or headers.get("x-first-death-queue") or message.delivery_info.get("routing_key"))
    target = _target_of_queue(queue)
    wire = target.wire if target is not None else queue.encode()
    deliveries = int(headers.get("x-delivery-count") or death.get("count") or 0)
    reason = death.get("reason") or headers.get("x-first-death-reason") or "delivery_limit"
    error = (f"RabbitMQ dead-lettered it from queue {queue!r} ({reason}): delivered past the queue's "
             "x-delivery-limit, its worker killed or lost every time (task id "
             f"{headers.get('id')})")
    return store.add(path, envelope.describe_call(path, args, kwargs), deliveries, 0, error, "",
                     wire, envelope.pack(path, args, kwargs, wire, None))


def resend_claimed(base: Path) -> int:
    """Publish the calls ``uwsgi-mules dead --resend`` put in ``<base>/dead/resend/``
    to their route again; returns how many were sent. A file whose sends
    fail (the broker is down) is given back whole and tried again on the
    next look (its calls already sent are then sent twice: at least once)."""
    directory = resend_dir(base)
    if not directory.is_dir():
        return 0
    sent = 0
    for path in claim(directory):
        try:
            sent += _resend_file(path)
        except Exception:
            path.rename(path.with_name(path.name.rsplit(CLAIMED, 1)[0]))
            raise
        path.unlink(missing_ok=True)
    return sent


def _resend_file(path: Path) -> int:
    sent = 0
    for entry in load(path).entries:
        call = envelope.unpack(entry.body)
        route = route_table().lookup(Target.from_wire(call.target))
        if route is None:
            logger.error("uwsgi-mules: dead task %s not re-sent: no route to %r here", call.describe(), call.target)
            continue
        route.send(call.path, call.args, call.kwargs)
        sent += 1
    return sent


def dead_letter_step() -> type:
    """The Celery consumer bootstep that records dead letters (made on demand:
    Celery is imported only by the apps that route to it)."""
    from celery import bootsteps
    from kombu import Consumer

    class DeadLetterStep(bootsteps.ConsumerStep):
        """Consume :data:`~.rabbitmq.DEAD_LETTER_QUEUE` into dead-task records."""

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.celery_app = parent.app
            self.base = dead_base(parent.app)
            self.store = DeadStore(self.base, logger.warning)

        def get_consumers(self, channel: Any) -> list[Any]:
            # only what the app's workers accept (pickle only if the app opted in)
            accept = list(self.celery_app.conf.accept_content or ["json"])
            return [Consumer(channel, queues=[dead_letter_queue()], callbacks=[self.on_message], accept=accept)]

        def start(self, parent: Any) -> None:
            super().start(parent)
            parent.timer.call_repeatedly(RESEND_INTERVAL, self.resend)

        def on_message(self, body: Any, message: Any) -> None:
            try:
                task = record_dead_letter(self.store, body, message)
            except ValueError as exc:
                logger.error("uwsgi-mules: dead letter %s left in %s: %s", message.headers.get("id"),
                             dead_letter_queue().name, exc)
                return
            except OSError as exc:
                logger.error("uwsgi-mules: dead letter %s not recorded (%s); it stays in the queue",
                             message.headers.get("id"), exc)
                return
            message.ack()
            logger.error("uwsgi-mules: DEAD task %s: %s; kept as dead task %s (uwsgi-mules dead --dir %s)",
                         task.call, task.error, task.id, self.base)

        def resend(self) -> None:
            try:
                sent = resend_claimed(self.base)
            except Exception as exc:  # noqa: BLE001 - a broken file must not stop the worker's timer
                logger.error("uwsgi-mules: re-sending dead tasks from %s failed: %r", resend_dir(self.base), exc)
                return
            if sent:
                logger.warning("uwsgi-mules: re-sent %d dead task(s) from %s", sent, resend_dir(self.base))

    return DeadLetterStep


def declare_routed_queues(app: Any) -> int:
    """Declare the app's quorum queues (with their exchanges) and the dead-letter
    queue; returns how many. A worker binds every queue of the app to
    Celery's delayed-delivery exchange when it starts, which fails for a
    queue whose exchange does not exist yet (one it does not consume)."""
    queues = [q for q in app.amqp.queues.values() if (q.queue_arguments or {}).get("x-queue-type") == "quorum"]
    queues.append(dead_letter_queue())
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()
    return len(queues)


def install_worker_steps(app: Any) -> None:
    """In ``app``'s workers: declare the routed queues when the worker starts
    and run :class:`DeadLetterStep` (idempotent)."""
    steps = app.steps["consumer"]
    if any(getattr(step, "__name__", "") == "DeadLetterStep" for step in steps):
        return
    steps.add(dead_letter_step())
    from celery import signals

    def declare(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        try:
            declare_routed_queues(app)
        except Exception as exc:  # noqa: BLE001 - the worker's own connection retries; say why delayed delivery may fail
            logger.warning("uwsgi-mules: could not declare the routed queues at worker start: %r", exc)

    signals.worker_init.connect(declare, weak=False)
