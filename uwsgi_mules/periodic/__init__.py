"""Periodic tasks that survive deploys, catch up by policy and never run twice.

Declare a schedule on an offloaded function::

    from datetime import timedelta
    from uwsgi_mules import Mule
    from uwsgi_mules.periodic import periodic

    @periodic(every=timedelta(minutes=5), catch_up="all")
    @Mule(1).offload(retries=2)
    def sync_feeds() -> None: ...

The parts, one job each:

* :mod:`.schedule`: the checked schedule (cron via the ``cron`` extra,
  ``every``, ``tz``, ``catch_up``, ``jitter``) and its due times;
* :mod:`.entries`: ``@periodic`` and the process's table of entries;
* :mod:`.state`: each entry's last due time, signed, durable;
* :mod:`.scheduler`: ``tick(now) -> next wake``, what is guaranteed;
* :mod:`.leader`: which process schedules (the mule holding a file lock);
* :mod:`.lease`: opt-in, one run per due time across instances (Redis);
* :mod:`.sending`: a run is an ordinary offload;
* :mod:`.claims`: the mule runs each due time once (a copy sent again is skipped);
* :mod:`.duty`: the scheduler as the mule loop's idle duty and the fake's;
* :mod:`.view`: the listing of ``uwsgi-mules schedule`` and the monitor.

Importing this package registers the scheduler as an idle duty of the mule
loop (:mod:`uwsgi_mules.idle_duties`) and the claim of a due time as a
run guard of the dispatcher (:mod:`uwsgi_mules.core.run_guards`). See docs/periodic.md.
"""

from __future__ import annotations

from ..core.run_guards import register_run_guard
from ..idle_duties import register_idle_duty
from .claims import admit_run
from .duty import periodic_duty
from .entries import Entry, declare, entries, forget_entries, periodic
from .lease import RedisLease, use_lease
from .schedule import MAX_CATCH_UP, Schedule
from .sending import META_KEY

register_idle_duty(periodic_duty)
register_run_guard(META_KEY, admit_run)  # a run the scheduler sent again runs once

__all__ = ["MAX_CATCH_UP", "Entry", "RedisLease", "Schedule", "declare", "entries", "forget_entries", "periodic",
           "use_lease"]
