"""The "Mules" section of the Django admin, and the same page at a URL of your own.

Add ``"uwsgi_mules.contrib.django.monitor"`` to ``INSTALLED_APPS`` (with
``django.contrib.admin``): the admin gets a "Mules" section showing the
instance's queues, mules and farms, waiting calls, dead tasks (re-send,
delete) and Django task results by id. Staff users with the ``view``
permission of the section ("Can view mules") see it; acting on dead tasks
takes the separate permission "Can re-send and delete dead tasks"
(``uwsgi_mules_monitor.act_on_mules``). Actions are POSTs under Django's CSRF
protection. Outside the admin::

    path("mules/", include("uwsgi_mules.contrib.django.monitor.urls"))

Settings (all optional), ``UWSGI_MULES_MONITOR = {"STATS": "127.0.0.1:9191",
"RUNTIME_DIR": ..., "BACKLOG_DIR": ..., "READ_ONLY": False}``: the stats
server adds the queue counters; the directories default to the running
instance's own.

The model is unmanaged: it has no table and needs no migration (the
django-rq pattern); it only carries the permissions.
"""
