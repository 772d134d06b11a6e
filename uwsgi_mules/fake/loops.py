"""The mule loops of a fake instance: the same :class:`~uwsgi_mules.mule.loop.MuleLoop`
a real programmed mule runs, one per mule whose program offers one
(``uwsgi_mules.mule:run`` does, through its ``mule_loop`` attribute), over the
fake's queues. Step mode calls :meth:`MuleLoop.step`, the fake's threads
:meth:`MuleLoop.serve`; a reload or a stop is each loop's own
:meth:`MuleLoop.stop`, and the next loops start as real mules do.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..layout.topology import ENTRY_POINT, is_entry_script
from ..mule.delivery.backlog import SavedOffload
from ..mule.hook import forget_hooked_loop, hooked_loop
from ..mule.loop import MuleLoop, Receive, StopReport
from .programs import import_program

if TYPE_CHECKING:
    from .backend import FakeUwsgi

#: attribute of a programmed-mule callable that makes its loop: ``mule_loop(backend, mule_id, receive=...)``
LOOP_ATTR = "mule_loop"
#: attribute of a programmed-mule callable that handles one message in step mode
STEP_HANDLER_ATTR = "handle_message"

LoopFactory = Callable[..., MuleLoop]


class FakeMuleLoops:
    """One owner for the loops of a fake's mules (made and started as that
    mule, on first use; a mule that died gets a new one)."""

    def __init__(self, fake: FakeUwsgi) -> None:
        self.fake = fake
        self.by_mule: dict[int, MuleLoop] = {}
        self._factories: dict[int, LoopFactory | None] = {}

    def program(self, mule: int) -> Any:
        """The callable mule ``mule`` runs (None: a signal-only mule or a script)."""
        spec = self.fake.topology().mules[mule - 1]
        name = spec.program or ""
        if spec.kind == "script" and is_entry_script(name):
            name = ENTRY_POINT  # the script only calls the entry point
        return import_program(name) if ":" in name else None

    def factory(self, mule: int) -> LoopFactory | None:
        if mule not in self._factories:
            self._factories[mule] = getattr(self.program(mule), LOOP_ATTR, None)
        return self._factories[mule]

    def looped(self) -> list[int]:
        """The mules that run a loop."""
        return [m for m in range(1, self.fake.mule_count + 1) if self.factory(m) is not None]

    def get(self, mule: int) -> MuleLoop:
        """The loop of ``mule`` (the caller runs as that mule)."""
        found = self.by_mule.get(mule)
        if found is None:
            make = self.factory(mule)
            assert make is not None, f"mule {mule} runs no loop"
            found = make(self.fake, mule, receive=self.receiver(mule))
            found.start()
            self.by_mule[mule] = found
        return found

    def receiver(self, mule: int) -> Receive:
        """``mule_get_msg`` for ``mule``'s loop: the fake's own (blocking, with
        signals) while its threads run; without them (step mode, a stop) the
        oldest message of the mule's queues at once, or ``b""`` (an empty
        message is read and passed over, as uWSGI's loop takes it for a timeout)."""
        fake = self.fake
        queues = fake.queues
        order = queues.poll_order(mule)
        take_first = queues.take_first

        def receive(signals: bool, farms: bool, buffer_size: int, timeout: int) -> bytes | None:
            if fake.mule_threads_running():
                return fake.mule_get_msg(signals, farms, buffer_size, timeout)
            while True:
                message = take_first(order, buffer_size)
                if message is None:
                    return b""
                if message:  # an empty message reads as uWSGI's timeout: the loop goes on
                    return message

        return receive

    def died(self, mule: int) -> None:
        """Mule ``mule`` died mid-task (a simulated crash): the next loop (or
        hooked loop) names the task and re-queues it under its retries."""
        self.fake.log(f"fake mule {mule} died mid-task (simulated crash); respawned")
        self.by_mule.pop(mule, None)
        if self.factory(mule) is not None:
            self.get(mule)
        else:
            forget_hooked_loop(self.fake, mule)
            hooked_loop(self.fake, mule)

    def stop_all(self, signum: int) -> dict[int, StopReport]:
        """Tell every loop to stop (``signum``: what uWSGI sends) and let it save; as each mule."""
        reports = {}
        for mule in self.looped():
            with self.fake.as_mule(mule):
                loop = self.get(mule)
                loop.request_stop(signum)
                reports[mule] = loop.stop()
            del self.by_mule[mule]
        return reports

    def start_all(self, kept: dict[int, list[SavedOffload]] | None = None) -> None:
        """Start a loop for every mule that runs one; ``kept``: what a
        previous loop of that mule handed over (no directory to save it to)."""
        for mule in self.looped():
            with self.fake.as_mule(mule):
                loop = self.get(mule)
                loop.replay.add_saved((kept or {}).get(mule, []))

    def reload(self) -> int:
        """A graceful reload: each loop saves, the next ones replay; returns how many were saved."""
        reports = self.stop_all(signal.SIGHUP)
        self.start_all({mule: report.kept for mule, report in reports.items()})
        return sum(len(report.entries) for report in reports.values())

    def shutdown(self) -> int:
        """A stop: each loop saves to the backlog directory or logs the discard; returns how many."""
        return sum(len(report.entries) for report in self.stop_all(signal.SIGINT).values())
