"""The fake's step mode: :meth:`FakeStepMode.run_pending` delivers every
queued message to the mule that would take it and runs it in the calling
thread, as that mule.

A mixin of :class:`~uwsgi_mules.fake.backend.FakeUwsgi`: the queues, their
lock and the poll order are its :class:`~uwsgi_mules.fake.queues.MuleQueues`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..backends.base import SimulatedCrash
from ..layout.topology import DEFAULT_RECV_SIZE, ENTRY_POINT, Topology, is_entry_script
from .queues import MuleQueues

#: attribute of a programmed-mule callable that handles one message, used in
#: step mode instead of running the callable's endless loop
STEP_HANDLER_ATTR = "handle_message"


class FakeStepMode:
    """``run_pending`` and the step handlers of a fake instance."""

    #: set by :class:`~uwsgi_mules.fake.backend.FakeUwsgi`
    queues: MuleQueues
    _local: Any
    _topology: Topology
    crash_handler: Callable[[int], object] | None
    due_runner: Callable[[int], int] | None
    raise_task_errors: bool
    task_errors: list[tuple[str, BaseException]]
    _log: Callable[[str], None]

    def run_pending(self, *, raise_errors: bool | None = None, limit: int | None = None) -> int:
        """Deliver every queued message to the mule that would take it and run
        it in this thread, as that mule; return how many offloaded tasks ran.

        Mules are served round-robin; each takes from its own queue, then the
        shared queue, then its farms (uWSGI's poll order). Messages for mules
        running a custom program stay queued (only that program reads them).
        Calls a mule holds until their time (``offload_in``, ``offload_at``,
        a retry's backoff) run once they are due on the virtual clock
        (``fake.advance(seconds)``), never before. With ``raise_errors`` the
        first exception raised by a task is re-raised after the run.
        """
        raise_errors = self.raise_task_errors if raise_errors is None else raise_errors
        errors_before = len(self.task_errors)
        handlers = []
        for m in range(1, self._topology.mule_count + 1):
            found = self._step_handler(m)
            if found is not None:
                handlers.append((("mule", m), self.queues.poll_order(m), found[0], found[1]))
        state = vars(self._local)  # this thread's attributes
        previous = state.get("process")
        try:
            ran = self._run_rounds(handlers, state, limit)
        finally:
            if previous is None:
                state.pop("process", None)
            else:
                self._local.process = previous
        if raise_errors and len(self.task_errors) > errors_before:
            raise self.task_errors[errors_before][1]
        return ran

    def _run_due(self, state: dict[str, Any]) -> int:
        """Run, as each mule, the calls it holds that are due on the virtual clock."""
        runner = self.due_runner
        ran = 0
        for mule in range(1, self.mule_count + 1):
            state["process"] = ("mule", mule)
            try:
                ran += runner(mule)  # type: ignore[misc]
            except SimulatedCrash:
                self._log(f"fake mule {mule} died mid-task (simulated crash); respawned")
                if self.crash_handler is not None:
                    self.crash_handler(mule)
                ran += 1
        return ran

    def _run_rounds(self, handlers: list[tuple[Any, ...]], state: dict[str, Any], limit: int | None) -> int:
        """Serve the mules round-robin until no queue has a message for them (or ``limit`` tasks ran)."""
        take_first = self.queues.take_first
        ran = 0
        unlimited = limit is None
        alone = len(handlers) == 1  # one mule: each round is one message, no need to leave the loop
        while unlimited or ran < limit:  # type: ignore[operator]
            progressed = False
            due_ran = self._run_due(state) if self.due_runner is not None else 0
            if due_ran:
                ran += due_ran
                progressed = True
            for process, order, handler, buffer_size in handlers:
                while True:
                    message = take_first(order, buffer_size)
                    if message is None:
                        break  # nothing for this mule
                    progressed = True
                    state["process"] = process  # local.process = process, without the lookup
                    try:
                        if handler(message):
                            ran += 1
                    except SimulatedCrash:
                        self._log(f"fake mule {process[1]} died mid-task (simulated crash); respawned")
                        if self.crash_handler is not None:
                            self.crash_handler(process[1])
                    if not alone or not (unlimited or ran < limit):  # type: ignore[operator]
                        break
            if not progressed:
                break
        return ran

    def steppable_mules(self) -> list[int]:
        """The mules step mode runs (signal-only mules and programs with a step handler)."""
        return [m for m in range(1, self._topology.mule_count + 1) if self._step_handler(m) is not None]

    def _step_handler(self, mule: int) -> tuple[Callable[[bytes], object], int] | None:
        spec = self._topology.mules[mule - 1]
        if spec.kind == "signal":
            return (self._call_hook, DEFAULT_RECV_SIZE)
        program_name = spec.program or ""
        if spec.kind == "script" and is_entry_script(program_name):
            program_name = ENTRY_POINT  # the script only calls the entry point
        if ":" in program_name:
            program = import_program(program_name)
            handler = getattr(program, STEP_HANDLER_ATTR, None)
            if handler is not None:
                return (handler, self._topology.recv_size)
        return None

    def _call_hook(self, message: bytes) -> object:
        hook = self.mule_msg_hook
        if hook is None:
            self._log(f"*** mule {self.mule_id()} received a {len(message)} bytes message ***")
            return False
        try:
            return hook(message)
        except Exception as exc:  # uWSGI prints the traceback and goes on
            self.report_task_error(exc, "mule_msg_hook")
            return False


def import_program(program: str) -> Callable[[], object]:
    """The callable a ``"pkg.module:attr"`` mule program names."""
    module_name, _, attr = program.partition(":")
    # import_module, not sys.modules.get: a module another thread is still
    # importing is in sys.modules half initialised; import_module waits for it
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    return target
