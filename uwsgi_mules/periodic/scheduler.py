"""The scheduler: ``tick(now) -> next wake time``, sending each due time once.

What one tick does, entry by entry (the process that ticks holds the lock
of :mod:`uwsgi_mules.periodic.leader`, so it is the only writer of the
state file):

1. A new entry (or one whose schedule changed) starts from now: its last
   due time is the latest one at or before now; nothing runs at once.
2. The due times after the recorded one and at or before ``now`` are
   planned (:meth:`Schedule.plan`): at the first tick after taking over
   the lock, all of them were missed and follow ``catch_up``; later, a due
   time seen within :data:`STALL_GRACE` seconds is on time and runs, an
   older one (the mule was stuck) follows ``catch_up``.
3. For each due time ``T`` to run: the state "T, sending" is written
   (atomically; every process sees it at once), the lease is claimed if
   there is one, the run is sent, then "T, sent" is written.

What that guarantees, for the entries of one instance (one state file):

* **Each due time runs once**, whatever dies when: ``T`` is recorded
  ("T, sending") before its run is sent, and a successor never sends a due
  time before the recorded one. A successor that finds "T, sending" (the
  sender died between that record and "T, sent": the fsyncs make it
  milliseconds) cannot know whether the run went out: it sends T again,
  and the mule that runs a copy claims ``(entry, T)`` first
  (:mod:`.claims`), so a second copy is skipped with one log line. Runs
  the mule cannot recognise (a Django task's enqueue, a Celery send) are
  not sent again instead (at most once: ``ERROR ... may not have run``).
* **No due time is missed without a log line**: one the policy drops
  (``skip``, ``latest``, or beyond ``all``'s bound) is logged with the
  count; one whose send raised (a full queue past the send timeout, ...)
  is logged and tried again at the next tick while it is on time.
* A run, once sent, is an ordinary offload: it is saved at a reload or a
  stop, re-sent after a crash of the mule running it when it has
  ``retries``, and kept as a dead task when it fails for good.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from ..backends.base import Backend
from .entries import Entry, entries
from .lease import Lease
from .sending import deduplicated, send_run
from .state import EntryState, StateFile

#: a due time the scheduler sees more than this many seconds late (the
#: scheduling mule was busy or stopped) counts as missed and follows catch_up
STALL_GRACE = 60.0
#: after a failed send, the next tick is at most this many seconds later
RETRY_AFTER = 1.0

__all__ = ["RETRY_AFTER", "STALL_GRACE", "Scheduler"]


class Scheduler:
    """Sends the due runs of the declared entries; the owner of the state file while it ticks."""

    def __init__(self, backend: Backend, state: StateFile, lease: Lease | None = None,
                 source: Callable[[], list[Entry]] = entries) -> None:
        self.backend = backend
        self.state = state
        self.lease = lease
        self.source = source
        self._states: dict[str, EntryState] | None = None  # None: read the file at the next tick
        #: set by a failed send: tick again by then
        self._retry_at: float | None = None

    def take_over(self) -> None:
        """This process just got the lock: read the state again; everything overdue was missed."""
        self._states = None

    def tick(self, now: float) -> float | None:
        """Send what is due at ``now``; the next time a tick is needed (None: no entries)."""
        taking_over = self._states is None
        if self._states is None:
            self._states = self.state.read()
        states = self._states
        self._retry_at = None
        wake: float | None = None
        for entry in self.source():
            known = states.get(entry.name)
            if known is None or known.schedule != entry.schedule.fingerprint():
                self._start(entry, now)
            else:
                self._catch_up_entry(entry, known, now, taking_over)
            following = entry.schedule.next_after(max(states[entry.name].due, now))
            wake = following if wake is None else min(wake, following)
        if self._retry_at is not None:
            wake = self._retry_at if wake is None else min(wake, self._retry_at)
        return wake

    def _start(self, entry: Entry, now: float) -> None:
        latest = entry.schedule.latest_at_or_before(now)
        assert self._states is not None
        self._states[entry.name] = EntryState(now if latest is None else latest, entry.schedule.fingerprint(),
                                              outcome="scheduled")
        self._write()

    def _catch_up_entry(self, entry: Entry, known: EntryState, now: float, taking_over: bool) -> None:
        log = self.backend.log
        if known.sending and not self._send_again(entry, known):
            return
        late_before = now if taking_over else now - STALL_GRACE
        runs, dropped = entry.schedule.plan(self._entry(entry).due, now, late_before)
        if dropped:
            log(f"uwsgi-mules: periodic {entry.name}: {dropped} missed due time(s) not run "
                f"(catch_up={entry.schedule.catch_up}{', at most 100' if entry.schedule.catch_up == 'all' else ''})")
        for due in runs:
            if not self._run(entry, due):
                return
        latest = entry.schedule.latest_at_or_before(now)
        if latest is not None and latest > self._entry(entry).due:
            self._set(entry, replace(self._entry(entry), due=latest, outcome=f"skipped ({dropped} missed)"))

    def _send_again(self, entry: Entry, known: EntryState) -> bool:
        """The scheduler died between recording "T, sending" and "T, sent":
        send T again (the mule runs a due time once: :mod:`.claims`); a run
        the mule cannot recognise (a Django task, a Celery send) is not sent
        again (at most once, logged). False if the send failed (tried again)."""
        when = _when(entry, known.due)
        if not deduplicated(entry):
            self.backend.log(f"uwsgi-mules: ERROR periodic {entry.name}: the run due {when} may not have run: the "
                             "scheduling process died while sending it; it is not sent again (at most once)")
            self._set(entry, replace(known, sending=False, outcome="unknown: the scheduler died while sending"))
            return True
        self.backend.log(f"uwsgi-mules: periodic {entry.name}: the scheduling process died while sending the run "
                         f"due {when}; sending it again (a copy that already ran is skipped)")
        return self._run(entry, known.due)

    def _run(self, entry: Entry, due: float) -> bool:
        """Send the run due at ``due`` (again, when the state says "``due``,
        sending"); False if it failed (tried again later)."""
        before = self._entry(entry)
        again = before.sending and before.due == due
        token = before.token if again and before.token else secrets.token_hex(8)
        sync = self._set(entry, replace(before, due=due, sending=True, token=token), durable=False)
        try:
            if self.lease is not None and not self.lease.claim(entry.name, due, token):
                self._set(entry, replace(before, due=due, sending=False, outcome="run by another instance (lease)"))
                return True
            send_run(self.backend, entry, due)
        except Exception as exc:  # noqa: BLE001 - whatever failed, nothing was sent: the state goes back, the next tick tries again
            self._set(entry, replace(before, outcome=f"send failed: {exc!r}"))
            self.backend.log(f"uwsgi-mules: ERROR periodic {entry.name}: the run due {_when(entry, due)} "
                             f"was not sent ({exc!r}); trying again in {RETRY_AFTER:g} s")
            self._retry_at = self.backend.wall_time() + RETRY_AFTER
            return False
        sync()
        self._set(entry, replace(before, due=due, sending=False, sent_at=self.backend.wall_time(), outcome="sent"))
        return True

    def _entry(self, entry: Entry) -> EntryState:
        assert self._states is not None
        return self._states[entry.name]

    def _set(self, entry: Entry, value: EntryState, *, durable: bool = True) -> Callable[[], None]:
        assert self._states is not None
        self._states[entry.name] = value
        return self._write(durable)

    def _write(self, durable: bool = True) -> Callable[[], None]:
        assert self._states is not None
        sync = self.state.write(self._states)
        if durable:
            sync()
        return sync


def _when(entry: Entry, due: float) -> str:
    return entry.schedule.aware(due).isoformat()
