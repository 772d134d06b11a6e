"""A Django 6 project for the real-uWSGI tests of MulesBackend: its INI is
rendered by ``manage.py uwsgi_mules_ini`` (``python -m django ... --settings``),
with the port, the store and the touch file from ``TASKS_SITE_*`` variables."""
