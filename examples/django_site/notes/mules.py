"""Offloaded functions of the notes app (imported by autodiscovery, like admin.py)."""

from __future__ import annotations

import logging

from uwsgi_mules import Mule
from uwsgi_mules.contrib.django import offload

from .models import Note

logger = logging.getLogger(__name__)


@offload()  # UWSGI_MULES["DEFAULT_TARGET"]: farm "notes"
def write_note(text: str) -> None:
    """Runs on a mule of farm "notes": writes a row."""
    note = Note.objects.create(text=text, status="written", mule=Mule.get_current_id())
    logger.info("mule %s wrote note %s", note.mule, note.pk)


@offload(on_commit=True)
def process_note(note_id: int) -> None:
    """Sent only once the view's transaction committed, so the row is there."""
    note = Note.objects.get(pk=note_id)
    note.status = "processed"
    note.mule = Mule.get_current_id()
    note.save(update_fields=["status", "mule"])
