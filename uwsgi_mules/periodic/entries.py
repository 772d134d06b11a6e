"""Declaring periodic entries: the ``@periodic`` decorator and the table of entries.

``@periodic(...)`` goes *above* an offload decorator (``Mule(N).offload()``,
``Farm(name).offload()``, ``mule_offload(...)``, ``@mulefunc``) or a Django
``@task`` and returns the function unchanged::

    @periodic(cron="0 3 * * *", tz="Europe/Paris", catch_up="latest")
    @Mule(1).offload(retries=2)
    def nightly_cleanup() -> None: ...

Each run is an ordinary offload of that function (its target, retries, dead
tasks; for a Django ``@task``: ``task.enqueue()``), called with no arguments, or with ``due=<aware datetime>`` (the due
time it runs for, in the schedule's timezone) when ``pass_due=True``. An
entry is named by the function's import path; one schedule per function.
The table is per process (filled when the task modules are imported, in
the mule as anywhere else); the scheduler reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from ..runtime.offload import Offloading, offloading_of
from .schedule import Schedule

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Entry", "declare", "declare_django_task", "entries", "forget_entries", "is_django_task", "periodic"]


#: sends one run another way than an offload envelope (a Django task's
#: ``enqueue``): called with the run's keyword arguments
RunSender = Callable[[dict[str, Any]], object]


@dataclass(frozen=True)
class Entry:
    """One periodic entry: the offloaded task and its schedule (``send``:
    None for an offload, else how a run is sent, e.g. a Django task's enqueue)."""

    name: str
    offloading: Offloading | None
    schedule: Schedule
    pass_due: bool
    send: RunSender | None = None

    def describe(self) -> str:
        where = self.offloading.target.describe() if self.offloading is not None else "its task backend"
        return f"{self.name} ({self.schedule.describe()}) -> {where}"


_lock = threading.Lock()
_entries: dict[str, Entry] = {}


def entries() -> list[Entry]:
    """The declared entries of this process, by name."""
    with _lock:
        return [_entries[name] for name in sorted(_entries)]


def forget_entries(names: list[str] | None = None) -> None:
    """Remove entries (all when ``names`` is None): for tests that declare their own."""
    with _lock:
        for name in list(_entries) if names is None else names:
            _entries.pop(name, None)


def declare(offloading: Offloading | None, schedule: Schedule, *, pass_due: bool = False,
            name: str | None = None, send: RunSender | None = None) -> Entry:
    """Add an entry for an offloaded task (the lower level of ``@periodic``),
    or, with ``name`` and ``send``, for a task sent another way (the Django
    mapping). The same task declared again with another schedule raises
    ValueError; with the same one, nothing changes."""
    if offloading is not None:
        entry_name = name or offloading.path
    elif name is not None and send is not None:
        entry_name = name
    else:
        raise ValueError("an entry is an offloaded function, or a name and a send function")
    entry = Entry(entry_name, offloading, schedule, pass_due, send)
    with _lock:
        known = _entries.get(entry.name)
        if known is not None and (known.schedule, known.pass_due) != (schedule, pass_due):
            raise ValueError(f"{entry.name} already has a schedule ({known.schedule.describe()}); "
                             "a task has one schedule")
        _entries[entry.name] = entry
    return entry


def is_django_task(obj: object) -> bool:
    """A ``django.tasks`` ``Task`` (told by its ``enqueue`` and ``module_path``; Django is not imported)."""
    return callable(getattr(obj, "enqueue", None)) and isinstance(getattr(obj, "module_path", None), str)


def declare_django_task(task: Any, schedule: Schedule, *, pass_due: bool = False) -> Entry:
    """An entry whose runs are ``task.enqueue()`` (through the task's backend:
    its results and retries); ``pass_due`` passes ``due=`` as an ISO 8601
    string (task arguments are JSON). ``jitter`` does not apply: ValueError."""
    if schedule.jitter:
        raise ValueError(f"{task.module_path}: jitter applies to offloaded functions, not to a Django @task "
                         "(use the task's run_after)")

    def enqueue(kwargs: dict[str, Any]) -> None:
        task.enqueue(**({"due": kwargs["due"].isoformat()} if pass_due else {}))

    return declare(None, schedule, pass_due=pass_due, name=task.module_path, send=enqueue)


def periodic(*, cron: str | None = None, every: timedelta | None = None, tz: Any = None,
             catch_up: str = "latest", jitter: float | timedelta = 0.0,
             pass_due: bool = False) -> Callable[[F], F]:
    """Run an offloaded function on a schedule: ``cron`` (5 fields, in ``tz``,
    default UTC; needs the ``cron`` extra) or ``every`` (a ``timedelta``).

    ``catch_up``: what runs for due times missed while no scheduler ran
    (a stop, a reload, a crash): ``"skip"``, ``"latest"`` (the default: one
    run) or ``"all"`` (each, at most 100). ``jitter``: hold each run a
    random 0..jitter seconds. ``pass_due``: call the function with
    ``due=<aware datetime>``. Raises ValueError at declaration for a bad
    schedule or a function that is not offloaded. See docs/periodic.md.
    """
    schedule = Schedule.build(cron=cron, every=every, tz=tz, catch_up=catch_up, jitter=jitter)

    def decorate(func: F) -> F:
        # a @mulefunc object keeps its offload wrapper in ``_offloaded``
        offloading = offloading_of(func) or offloading_of(getattr(func, "_offloaded", None))
        if offloading is not None:
            declare(offloading, schedule, pass_due=pass_due)
        elif is_django_task(func):
            declare_django_task(func, schedule, pass_due=pass_due)
        else:
            raise ValueError(
                f"@periodic needs an offloaded function or a Django @task: put it above Mule(N).offload(), "
                f"Farm(name).offload(), mule_offload(...) or @task; {getattr(func, '__qualname__', func)!r} is neither"
            )
        return func

    return decorate
