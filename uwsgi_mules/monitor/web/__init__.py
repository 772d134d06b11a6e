"""The monitoring page: a WSGI app (standalone with ``uwsgi-mules dashboard``,
or mounted in the instance), its JSON API, ``/metrics`` and the actions on dead tasks.

- :mod:`.service`: what the page asks, framework-free (the Django admin section uses it too);
- :mod:`.page`: the HTML shell (the data is drawn by ``static/dashboard.js``);
- :mod:`.guard`: the action token and the CSRF check of the standalone app;
- :mod:`.wsgi`: the WSGI app.
"""

from .service import Dashboard
from .wsgi import DashboardApp, make_app

__all__ = ["Dashboard", "DashboardApp", "make_app"]
