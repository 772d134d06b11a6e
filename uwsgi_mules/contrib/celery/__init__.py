"""Route offloads to Celery (Redis broker and result backend).

``install(app)`` registers the one task that runs uwsgi-mules offloads on
Celery workers; ``route(app, "reports", 2)`` sends offloads to farm
``reports`` and mule 2 to that app (Celery queues ``reports`` and ``mule2``)
instead of local mules. Unrouted targets stay local. Consumers: any
``celery -A proj worker -Q reports``, or mules running
``uwsgi_mules.contrib.celery.mule:run``. Needs ``pip install uwsgi-mules[celery]``.
See docs/scaling.md.
"""

from __future__ import annotations

from .errors import BrokerUnavailable
from .results import CeleryResult, CeleryTaskError
from .routes import CeleryRoute, default_queue, route, routes_of, unroute
from .task import TASK_NAME, install, run_offloaded

__all__ = [
    "TASK_NAME",
    "BrokerUnavailable",
    "CeleryResult",
    "CeleryRoute",
    "CeleryTaskError",
    "default_queue",
    "install",
    "route",
    "routes_of",
    "run_offloaded",
    "unroute",
]
