"""The example site's Celery app (used when DJANGO_SITE_CELERY_BROKER is set)."""

from __future__ import annotations

import os

from celery import Celery

from uwsgi_mules.contrib.celery import install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

broker = os.environ.get("DJANGO_SITE_CELERY_BROKER", "redis://127.0.0.1:6379/0")
app = Celery("django_site", broker=broker, backend=broker)
# a consumer killed mid-task gets its task redelivered after this many seconds
app.conf.broker_transport_options = {"visibility_timeout": 300}
install(app)
