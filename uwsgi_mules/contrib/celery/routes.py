"""``route(app, *targets)``: send offloads of these targets to Celery."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from ...core.state import runtime_state
from ...runtime.offload import TypeMuleFarm, resolve_target
from ...runtime.routing import route_table
from ...runtime.targets import Target
from .app_conf import apply_route_defaults
from .arguments import not_serializable, serializer_for
from .errors import BrokerUnavailable
from .rabbitmq import DEFAULT_DELIVERY_LIMIT, apply_safe_settings, is_rabbitmq
from .results import CeleryResult
from .task import install

#: the shortest delay published through RabbitMQ's delayed delivery (seconds)
MIN_DELAYED = 1.25


def eta_of(due: float) -> datetime:
    """Celery's ``eta`` (an aware UTC datetime) for ``due`` epoch seconds."""
    return datetime.fromtimestamp(due, tz=timezone.utc)


def default_queue(target: Target) -> str:
    """The Celery queue of a target: the farm name, ``mule<N>``, or
    ``mules`` for the shared queue (0)."""
    if target.kind == "farm":
        return target.farm
    if target.kind == "mule":
        return f"mule{target.mule_id}"
    return "mules"


class CeleryRoute:
    """Offloads of one target, sent as the ``uwsgi_mules.run`` task to a queue."""

    def __init__(self, app: Any, target: Target, queue: str, send_timeout: float | None = None) -> None:
        self.app = app
        self.target = target
        self.queue = queue
        self.task = install(app)
        self.serializer = serializer_for(app)
        self.send_timeout = send_timeout
        self.rabbitmq = is_rabbitmq(app)
        self._options = {"queue": queue, "serializer": self.serializer, "retry": False}
        self._errors: tuple[type[BaseException], ...] | None = None
        # monitoring shows the offloaded function (``shadow``) and its own
        # arguments, as for a task called with .delay()
        from celery.utils.saferepr import saferepr

        self._saferepr = saferepr
        self._argsrepr_max = app.amqp.argsrepr_maxsize
        self._kwargsrepr_max = app.amqp.kwargsrepr_maxsize

    def describe(self) -> str:
        return f"{self.target.describe()} -> Celery queue {self.queue!r} of app {self.app.main!r}"

    def __repr__(self) -> str:
        return f"<CeleryRoute {self.describe()}>"

    def send(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Publish fire-and-forget (no result stored); True once the broker has it."""
        self._publish(path, args, kwargs, True)
        return True

    def submit(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CeleryResult:
        """Publish and return a handle on the result (stored in the result backend)."""
        return CeleryResult(self._publish(path, args, kwargs, False))

    def send_at(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], due: float) -> bool:
        """Publish to run at ``due`` (epoch seconds) or later: Celery's ``eta``
        (on RabbitMQ with quorum queues the message waits in the broker:
        kombu's native delayed delivery); True once the broker has it."""
        self._publish(path, args, kwargs, True, self._eta(due))
        return True

    def submit_at(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], due: float) -> CeleryResult:
        """:meth:`submit` to run at ``due`` (epoch seconds) or later."""
        return CeleryResult(self._publish(path, args, kwargs, False, self._eta(due)))

    def _eta(self, due: float) -> datetime | None:
        """The ``eta`` to publish for ``due``: None when it is past (run now).
        On RabbitMQ at least :data:`MIN_DELAYED` seconds ahead: Celery's native
        delayed delivery truncates the countdown to whole seconds and refuses
        one under a second (the call then runs up to that much late, never early)."""
        now = time.time()
        if due <= now:
            return None
        return eta_of(max(due, now + MIN_DELAYED) if self.rabbitmq else due)

    def _publish(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], ignore_result: bool,
                 eta: datetime | None = None) -> Any:
        from kombu.exceptions import EncodeError

        started = time.monotonic()
        options = self._options if eta is None else {**self._options, "eta": eta}
        try:
            return self.task.apply_async(
                (path, args, kwargs),
                ignore_result=ignore_result,
                shadow=path,
                argsrepr=self._saferepr(args, self._argsrepr_max),
                kwargsrepr=self._saferepr(kwargs, self._kwargsrepr_max),
                **options,
            )
        except EncodeError as exc:
            raise not_serializable(path, args, kwargs, self.serializer, exc) from exc
        except self._connection_errors() as exc:
            return self._publish_retrying(path, args, kwargs, ignore_result, exc, started, options)

    def _publish_retrying(
        self,
        path: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ignore_result: bool,
        first: BaseException,
        started: float,
        options: dict[str, Any],
    ) -> Any:
        """Retry a failed publish until ``send_timeout``; never start an
        attempt that would likely end after it; then raise BrokerUnavailable."""
        timeout = runtime_state().settings.send_timeout if self.send_timeout is None else self.send_timeout
        deadline = started + timeout
        last, delay, attempt = first, 0.05, time.monotonic() - started
        while time.monotonic() + delay + attempt < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            began = time.monotonic()
            try:
                return self.task.apply_async(
                    (path, args, kwargs), ignore_result=ignore_result, shadow=path, **options
                )
            except self._connection_errors() as exc:
                last, attempt = exc, time.monotonic() - began
        raise BrokerUnavailable(
            f"cannot send {path} to {self.describe()}: the broker did not accept it within {timeout}s "
            f"({type(last).__name__}: {last}). The call was not sent."
        ) from last

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        if self._errors is None:
            from kombu.exceptions import OperationalError

            with self.app.connection_for_write() as connection:  # no I/O: only the transport's error types
                errors = tuple(connection.connection_errors) + tuple(connection.channel_errors)
            self._errors = (OperationalError, OSError, *errors)
        return self._errors


def broker_timeouts(send_timeout: float) -> dict[str, float]:
    """The ``broker_transport_options`` ``route()`` sets unless present:
    connect and socket timeouts of ``send_timeout`` (the socket timeout at
    least 2 s, above the 1 s poll of consumers), reconnect attempts for at
    most ``send_timeout`` seconds, 0 to 0.5 s apart (kombu's default waits
    1 s between attempts)."""
    return {
        "socket_connect_timeout": send_timeout,
        "socket_timeout": max(send_timeout, 2.0),
        "connect_retries_timeout": send_timeout,
        "interval_start": 0.0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    }


def route(
    app: Any, *targets: TypeMuleFarm, queue: str | None = None, send_timeout: float | None = None,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT, consumer_timeout: float | None = None,
) -> list[CeleryRoute]:
    """From now on, offloads to ``targets`` (farm names, mule ids, ``Mule``,
    ``Farm``) go to the Celery ``app`` on ``queue`` (default: the farm name
    or ``mule<N>``) instead of local mules.

    Also installs the offload task in ``app``. Unless the app sets them,
    the broker connection's timeouts and retry intervals
    (``broker_transport_options``, see :func:`broker_timeouts`) follow
    ``send_timeout`` (default: uwsgi-mules' ``send_timeout``, 10 s): a broker
    that is down or does not answer raises :class:`BrokerUnavailable` in the
    caller after about ``send_timeout`` instead of hanging.

    On RabbitMQ (an ``amqp://`` broker) it also applies the safe settings
    where the app does not set them (:mod:`.rabbitmq`): late acknowledgement,
    reject on a lost worker, publisher confirms, prefetch 1, and each queue
    as a durable quorum queue whose messages are dead-lettered after
    ``delivery_limit`` deliveries (``consumer_timeout``: seconds, RabbitMQ
    3.12 and later; before, it is the server's setting).
    """
    if not targets:
        raise ValueError("route() needs at least one target (a farm name or a mule id)")
    timeout = runtime_state().settings.send_timeout if send_timeout is None else float(send_timeout)
    options = app.conf.broker_transport_options
    if options is None:
        app.conf.broker_transport_options = options = {}
    for key, value in broker_timeouts(timeout).items():
        options.setdefault(key, value)
    made = []
    table = route_table()
    apply_route_defaults(app)
    rabbitmq = is_rabbitmq(app)
    if rabbitmq:
        from .dead_letters import install_worker_steps

        install_worker_steps(app)
    for spec in targets:
        target = resolve_target(spec)
        name = queue or default_queue(target)
        if rabbitmq:
            apply_safe_settings(app, name, delivery_limit=delivery_limit, consumer_timeout=consumer_timeout)
        made.append(CeleryRoute(app, target, name, send_timeout))
        table.set(target, made[-1])
    return made


def unroute(*targets: TypeMuleFarm) -> None:
    """Send ``targets`` to local mules again (all routes when none given)."""
    table = route_table()
    if not targets:
        table.clear()
        return
    for spec in targets:
        table.remove(resolve_target(spec))


def routes_of(app: Any | None = None) -> dict[str, CeleryRoute]:
    """Current Celery routes (of ``app``, or all), by target description."""
    return {
        target.describe(): route_
        for target, route_ in route_table().items()
        if isinstance(route_, CeleryRoute) and (app is None or route_.app is app)
    }
