from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from .models import Note
from .mules import process_note, write_note
from .tasks import TaskResultDoesNotExist, count_words


@require_GET
def list_notes(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"notes": [n.as_dict() for n in Note.objects.order_by("pk")]})


@require_POST
def write(request: HttpRequest) -> JsonResponse:
    """Offload a task that writes a row."""
    text = request.GET.get("text", "hello")
    write_note(text)
    return JsonResponse({"queued": text}, status=202)


@require_POST
def submit(request: HttpRequest) -> JsonResponse:
    """Create a row and have a mule process it once the transaction commits."""
    with transaction.atomic():
        note = Note.objects.create(text=request.GET.get("text", "hello"))
        process_note(note.pk)  # sent when the atomic block commits
    return JsonResponse({"id": note.pk}, status=202)


@require_POST
def words(request: HttpRequest, note_id: int) -> JsonResponse:
    """Enqueue the Django task that counts a note's words (on farm "notes")."""
    result = count_words.enqueue(note_id)
    return JsonResponse({"task": result.id, "status": result.status}, status=202)


@require_GET
def task_result(request: HttpRequest, task_id: str) -> JsonResponse:
    """The state of a task, and its return value once it succeeded."""
    try:
        result = count_words.get_result(task_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"task": task_id, "error": "unknown or expired"}, status=404)
    body: dict[str, object] = {"task": result.id, "status": result.status, "workers": result.worker_ids}
    if result.status == "SUCCESSFUL":
        body["result"] = result.return_value
    return JsonResponse(body)
