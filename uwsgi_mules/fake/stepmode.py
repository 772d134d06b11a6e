"""The fake's step mode: :meth:`FakeStepMode.run_pending` lets every mule
work in the calling thread, as that mule, until nothing is left to do.

A mule whose program offers a loop (``uwsgi_mules.mule:run``) runs its
:class:`~uwsgi_mules.mule.loop.MuleLoop` one :meth:`~uwsgi_mules.mule.loop.MuleLoop.step`
at a time; a signal-only mule gets each message through the
``mule_msg_hook`` as uWSGI's own loop calls it; a custom program with a
``handle_message`` attribute gets each message there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..backends.base import SimulatedCrash
from ..layout.topology import DEFAULT_RECV_SIZE
from ..mule.hook import hooked_loop
from .loops import STEP_HANDLER_ATTR

if TYPE_CHECKING:
    from .backend import FakeUwsgi
    from .queues import MessageQueue

__all__ = ["FakeStepMode"]

#: messages a mule alone in step mode reads per step
_ALONE_CHUNK = 256


class _Stepper:
    """How step mode drives one mule: its loop, or a message handler."""

    __slots__ = ("handler", "mule", "order", "size")

    def __init__(self, mule: int, handler: Callable[[bytes], object] | None, order: list[MessageQueue],
                 size: int) -> None:
        self.mule = mule
        self.handler = handler  #: None: the mule runs a loop
        self.order = order
        self.size = size


class FakeStepMode:
    """``run_pending`` of a fake instance (one per fake)."""

    def __init__(self, fake: FakeUwsgi) -> None:
        self.fake = fake

    def run_pending(self, *, raise_errors: bool | None = None, limit: int | None = None) -> int:
        """Let every mule work until no queue has a message it takes and
        nothing it holds is due; return how many offloaded tasks ran.

        Mules are served round-robin; each takes from its own queue, then the
        shared queue, then its farms (uWSGI's poll order). Messages for mules
        running a custom program stay queued (only that program reads them).
        Calls a mule holds until their time (``offload_in``, ``offload_at``,
        a retry's backoff) run once they are due on the virtual clock
        (``fake.advance(seconds)``), never before. With ``raise_errors`` the
        first exception raised by a task is re-raised after the run.
        """
        fake = self.fake
        steppers = [s for s in map(self._stepper, range(1, fake.mule_count + 1)) if s is not None]
        state = vars(fake.local)  # this thread's attributes
        previous = state.get("process")
        with fake.reraising(raise_errors):
            try:
                return self._run_rounds(steppers, state, limit)
            finally:
                if previous is None:
                    state.pop("process", None)
                else:
                    fake.local.process = previous

    def _run_rounds(self, steppers: list[_Stepper], state: dict[str, Any], limit: int | None) -> int:
        """Round-robin until no mule made progress (or ``limit`` tasks ran)."""
        ran = 0
        alone = len(steppers) == 1  # one mule: each round is many messages
        while limit is None or ran < limit:
            progressed = False
            for stepper in steppers:
                chunk = (_ALONE_CHUNK if limit is None else limit - ran) if alone else 1
                state["process"] = ("mule", stepper.mule)
                try:
                    done, moved = self._step(stepper, chunk)
                except SimulatedCrash:
                    self.fake.loops.died(stepper.mule)
                    done, moved = 0, True
                ran += done
                progressed = progressed or moved
                if limit is not None and ran >= limit:
                    break
            if not progressed:
                break
        return ran

    def _step(self, stepper: _Stepper, chunk: int) -> tuple[int, bool]:
        """One step of one mule: (calls that ran, whether anything moved)."""
        if stepper.handler is None:
            loop = self.fake.loops.get(stepper.mule)
            ran = loop.step(chunk)
            return ran, loop.progressed
        ran = 0
        read = 0
        take_first = self.fake.queues.take_first
        while read < chunk:
            message = take_first(stepper.order, stepper.size)
            if message is None:
                break
            read += 1
            if stepper.handler(message):
                ran += 1
        hooked = hooked_loop(self.fake, stepper.mule, create=False)
        due = hooked.step(0) if hooked is not None else 0  # what the hook tends after a message
        return ran + due, bool(read or due or (hooked is not None and hooked.progressed))

    def steppable_mules(self) -> list[int]:
        """The mules step mode runs (loops, signal-only mules and programs with a step handler)."""
        return [m for m in range(1, self.fake.mule_count + 1) if self._stepper(m) is not None]

    def _stepper(self, mule: int) -> _Stepper | None:
        fake = self.fake
        order = fake.queues.poll_order(mule)
        if fake.topology().mules[mule - 1].kind == "signal":
            return _Stepper(mule, fake.call_hook, order, DEFAULT_RECV_SIZE)
        if fake.loops.factory(mule) is not None:
            return _Stepper(mule, None, order, 0)
        handler = getattr(fake.loops.program(mule), STEP_HANDLER_ATTR, None)
        if handler is None:
            return None
        return _Stepper(mule, handler, order, fake.topology().recv_size)
