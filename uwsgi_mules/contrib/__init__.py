"""Integrations with web frameworks (``uwsgi_mules.contrib.django``).

Nothing here is imported by ``uwsgi_mules`` itself: each integration needs
its framework installed and is imported only when you use it.
"""
