"""WSGI entry point of the tasks test project."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.tasks_project.settings")
application = get_wsgi_application()
