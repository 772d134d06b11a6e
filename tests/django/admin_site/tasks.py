"""A Django task for the result lookup (Django 6's django.tasks, or the backport)."""

from __future__ import annotations

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task()
def add(a: int, b: int) -> int:
    return a + b
