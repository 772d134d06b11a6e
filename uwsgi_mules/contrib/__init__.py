"""Integrations: ``uwsgi_mules.contrib.django`` (Django) and
``uwsgi_mules.contrib.celery`` (routes to Celery on Redis).

Nothing here is imported by ``uwsgi_mules`` itself: each integration needs
its framework installed and is imported only when you use it.
"""
