"""See and steer the work of an instance's mules.

- :mod:`.model`: the typed read model (:class:`InstanceSnapshot`);
- :mod:`.snapshot`: builds it from the sources (:mod:`.sources`);
- :mod:`.tracker`: rates, history and running times across snapshots;
- :mod:`.metrics`: a Prometheus collector over it (extra ``monitor``);
- :mod:`.web`: the page, its JSON API and actions (a WSGI app, standalone or mounted);
- :mod:`.actions`: re-send or delete dead tasks, each exactly once.
"""

from .model import DeadView, FarmView, InstanceSnapshot, MuleView, QueueView, ScheduleEntryView, TaskStats, WaitingView
from .snapshot import InstanceSources, take_snapshot
from .tracker import Tracker

__all__ = [
    "DeadView", "FarmView", "InstanceSnapshot", "InstanceSources", "MuleView", "QueueView", "ScheduleEntryView",
    "TaskStats", "Tracker", "WaitingView", "take_snapshot",
]
