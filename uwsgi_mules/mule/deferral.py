"""The mule side of time: calls held until they are due, retries after an
exception, tasks given up after their last attempt.

One :class:`Deferral` per dispatcher. A call whose metadata carries a due
time (``meta["due"]``, epoch seconds: ``offload_in``, ``offload_at``,
:func:`~uwsgi_mules.runtime.later.send_call_at`) that has not come yet is
held in the receiving mule's :class:`~uwsgi_mules.mule.delivery.waiting.WaitingRoom`.
A task that raises an exception of its ``retry_on`` with attempts left is
sealed again with ``attempt + 1`` and a due time ``now + backoff`` into the
same room; after its last attempt it is recorded as dead
(:mod:`uwsgi_mules.mule.delivery.dead`) with one ``DEAD task`` log line.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import envelope
from ..backends.base import Backend
from ..core.retry_policy import DEAD, FAILED, RETRY, RetryPolicy, decide
from ..core.state import runtime_state
from ..envelope import Envelope, WireTarget
from ..instance import BACKLOG_DIR_ENV
from ..runtime.results import describe_exception
from .delivery.backlog import SavedOffload
from .delivery.dead import DEFAULT_MAX, MAX_ENV, DeadStore, DeadTask
from .delivery.waiting import LIMIT_ENV, WaitingRoom, waiting_limit, waiting_path

__all__ = ["DEAD", "FAILED", "RETRY", "Deferral"]  # the outcomes of after_failure: core.retry_policy.decide


class Deferral:
    """Waiting rooms (one per mule of this process), retries and dead tasks."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.log = backend.log
        self.signer = backend.signer()
        self.policies: dict[str, RetryPolicy] = runtime_state().retry_policies
        self.rooms: dict[int, WaitingRoom] = {}
        self.rng = random.Random()
        self._dead: DeadStore | None = None

    # -- waiting ------------------------------------------------------------------------

    def room(self, mule_id: int) -> WaitingRoom:
        """The waiting room of mule ``mule_id``; the first use reads back what
        a previous process of that mule left waiting (it died)."""
        found = self.rooms.get(mule_id)
        if found is None:
            directory = self.backend.runtime_dir()
            found = WaitingRoom(waiting_path(directory, mule_id) if directory is not None else None, self.log,
                                self.signer, limit=waiting_limit(self.backend.getenv(LIMIT_ENV), self.log),
                                refused=lambda call, why: self.bury(envelope.unpack(call.body), why, "", "refused"))
            loaded = found.load()
            if loaded:
                self.log(f"uwsgi-mules: mule {mule_id} took back {loaded} waiting task(s) of its previous process")
            self.rooms[mule_id] = found
        return found

    def hold(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], target: WireTarget,
             meta: dict[str, Any]) -> bool:
        """Keep a call that is not due yet in this mule's room; False when it is due."""
        due = meta.get("due")
        if not (type(due) is int or type(due) is float) or due <= self.backend.wall_time():
            return False
        self.room(self.backend.mule_id()).add(float(due), target, envelope.pack(path, args, kwargs, target, meta),
                                              path)
        return True

    def run_due(self, mule_id: int, handle: Callable[[bytes], object], limit: int | None = None,
                should_stop: Callable[[], bool] | None = None) -> int:
        """Hand the calls of mule ``mule_id`` that are due now to ``handle``
        (the sealed envelope, which marks it running), at most ``limit`` of
        them, and none once ``should_stop()`` says the mule is told to stop
        (checked between any two calls): what is left stays in the room, to
        run after the queue had its turn or to be saved by the stop; returns
        how many ran."""
        room = self.room(mule_id)  # a signal-only mule respawned after a crash reads its file back here
        if not room:
            return 0
        ran = 0
        now = self.backend.wall_time()
        seal = self.signer.seal
        while limit is None or ran < limit:
            if should_stop is not None and should_stop():
                break
            call = room.pop_due(now)
            if call is None:
                break
            handle(seal(call.body))
            ran += 1
        return ran

    def take_waiting(self, mule_id: int) -> list[SavedOffload]:
        """Every call mule ``mule_id`` holds, as backlog entries (it is
        stopping: they are saved with the backlog, each with its due time in
        its metadata; :meth:`WaitingRoom.forget_file` once they are)."""
        room = self.rooms.get(mule_id)
        return [call.saved() for call in room.take_all()] if room is not None else []

    # -- failures --------------------------------------------------------------------------

    def after_failure(self, exc: BaseException, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                      target: WireTarget, meta: dict[str, Any]) -> str:
        """A task raised: :data:`RETRY` (held for its backoff), :data:`DEAD`
        (its last attempt: recorded) or :data:`FAILED` (not retried: an
        exception outside ``retry_on``, or no retries). An error while
        deciding (the policy itself raised) never reaches the mule: the task
        is recorded as dead with one ``DEAD task`` line naming the error."""
        try:
            return self._decide(exc, path, args, kwargs, target, meta)
        except Exception as policy_error:  # noqa: BLE001 - a policy error must not kill the mule
            name, message, trace = describe_exception(exc)
            self.bury(Envelope(path, args, kwargs, target, meta), f"{name}: {message}", trace,
                      f"not retried: its retry policy failed ({_error_line(policy_error)})")
            return DEAD

    def _decide(self, exc: BaseException, path: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                target: WireTarget, meta: dict[str, Any]) -> str:
        retries = int(meta.get("retries", 0))
        attempt = int(meta.get("attempt", 0))
        decision = decide(self.policies.get(path), exc, attempt + 1, retries, self.rng)
        if decision.outcome == FAILED:
            return FAILED
        description = envelope.describe_call(path, args, kwargs)
        if decision.outcome == RETRY:
            retry, delay = attempt + 1, decision.delay
            updated = dict(meta, attempt=retry, due=self.backend.wall_time() + delay)
            self.room(self.backend.mule_id()).add(
                updated["due"], target, envelope.pack(path, args, kwargs, target, updated), path
            )
            self.log(
                f"uwsgi-mules: {description} raised {_error_line(exc)}; retry {retry} of {retries} in {delay:.3f}s"
            )
            return RETRY
        name, message, trace = describe_exception(exc)
        self.bury(Envelope(path, args, kwargs, target, meta), f"{name}: {message}", trace,
                  f"failed {attempt + 1} time(s)")
        return DEAD

    def bury(self, call: Envelope, error: str, trace: str, how: str) -> None:
        """Record a task after its last attempt; one ``DEAD task`` line names it."""
        task = self._record_dead(call, error, trace)
        kept = f"kept as dead task {task.id} (uwsgi-mules dead)" if task is not None else "its record could not be written"
        self.log(
            f"uwsgi-mules: DEAD task {call.describe()}: {how} (retries={call.retries}), last error {error}; {kept}"
        )

    def bury_crashed(self, call: Envelope, mule_id: int) -> None:
        """The dead-task record of a task that killed its mule on its last attempt
        (the crash report already logged the ``DEAD task`` line)."""
        self._record_dead(call, f"the task killed mule {mule_id}", "")

    def _record_dead(self, call: Envelope, error: str, trace: str) -> DeadTask | None:
        """Keep ``call`` (its attempts reset, so it can be sent again) in the dead store."""
        # "periodic": the due time's claim is spent; a dead task sent again runs (periodic/claims.py)
        meta = {k: v for k, v in (call.meta or {}).items() if k not in ("attempt", "due", "periodic")}
        body = envelope.pack(call.path, call.args, call.kwargs, call.target, meta or None)
        try:
            task = self.dead_store().add(call.path, call.describe(), call.attempt + 1, call.retries, error, trace,
                                         call.target, body)
        except OSError as exc:
            self.log(f"uwsgi-mules: ERROR the dead task record of {call.describe()} could not be written: {exc}")
            return None
        return task

    def dead_store(self) -> DeadStore:
        """Where dead tasks are kept: the backlog directory when set, else
        the runtime directory (in memory on a fake without either)."""
        if self._dead is None:
            backend = self.backend
            configured = backend.getenv(BACKLOG_DIR_ENV)
            base = Path(configured) if configured else backend.runtime_dir()
            try:
                limit = int(backend.getenv(MAX_ENV) or DEFAULT_MAX)
            except ValueError:
                limit = DEFAULT_MAX
            self._dead = DeadStore(base, self.log, limit)
        return self._dead


def _error_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
