"""A periodic entry for the monitoring tests' instance (loaded only by
``monitored_instance(..., periodic=True)``: its runs would count in mule 1's
figures that the other tests compare with the ledger)."""

from __future__ import annotations

from datetime import timedelta

from tests.monitor.tasks import ledger
from uwsgi_mules import Mule
from uwsgi_mules.periodic import periodic


@periodic(every=timedelta(seconds=1))
@Mule(1).offload()
def heartbeat() -> None:
    ledger("heartbeat", "ran")
