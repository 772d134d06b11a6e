"""Django tasks of the notes app (``TASKS`` uses MulesBackend: they run on mules)."""

from __future__ import annotations

from uwsgi_mules import Mule

try:
    from django.tasks import task
    from django.tasks.exceptions import TaskResultDoesNotExist
except ImportError:  # Django < 6: the django-tasks backport
    from django_tasks import task  # type: ignore[no-redef]
    from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef]

__all__ = ["TaskResultDoesNotExist", "count_words"]

from .models import Note


@task(queue_name="notes")  # the farm "notes"
def count_words(note_id: int) -> dict[str, int]:
    """Counts the words of a note on a mule; the result is read with get_result()."""
    note = Note.objects.get(pk=note_id)
    return {"note": note.pk, "words": len(note.text.split()), "mule": Mule.get_current_id()}
