"""The page mounted in the instance itself::

    uwsgi --mount /mules=uwsgi_mules.monitor.web.mounted:application ...

It reads the instance's own directories; the stats server address
(``UWSGIMULES_STATS``, e.g. ``127.0.0.1:9191``) adds the queue counters;
actions need ``UWSGIMULES_DASHBOARD_TOKEN`` (without it the page is
read-only), ``UWSGIMULES_DASHBOARD_READ_ONLY=1`` turns them off.
"""

from __future__ import annotations

import os

from .guard import TOKEN_ENV
from .wsgi import make_app

STATS_ENV = "UWSGIMULES_STATS"
READ_ONLY_ENV = "UWSGIMULES_DASHBOARD_READ_ONLY"

application = make_app(os.environ.get(STATS_ENV) or None, token=os.environ.get(TOKEN_ENV) or None,
                       read_only=os.environ.get(READ_ONLY_ENV, "") not in ("", "0"))
