"""Views that enqueue the test tasks and report their results as JSON."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tests.django.app_tasks import tasks
from uwsgi_mules.contrib.django.tasks.compat import TaskResultDoesNotExist, TaskResultMismatch

TASKS = {name: getattr(tasks, name) for name in ("add", "fail", "where", "async_add", "with_context", "count", "flaky")}


def _when(value: datetime.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@csrf_exempt
def enqueue(request: HttpRequest, name: str) -> JsonResponse:
    """POST body: {"args": [...], "queue": "...", "delay": seconds, "times": n}."""
    body: dict[str, Any] = json.loads(request.body or b"{}")
    task = TASKS[name]
    changes: dict[str, Any] = {}
    if body.get("queue"):
        changes["queue_name"] = body["queue"]
    if body.get("delay"):
        changes["run_after"] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=body["delay"])
    task = task.using(**changes)
    if body.get("times"):  # many at once: [n] + args for n in range(times)
        ids = [task.enqueue(n, *body.get("args", [])).id for n in range(body["times"])]
        return JsonResponse({"ids": ids}, status=202)
    result = task.enqueue(*body.get("args", []))
    return JsonResponse({"id": result.id, "status": result.status, "run_after": _when(task.run_after)}, status=202)


@csrf_exempt
def enqueue_not_json(request: HttpRequest) -> JsonResponse:
    request.body  # noqa: B018 - read it: uWSGI resets a connection whose request body was left unread
    try:
        tasks.add.enqueue(object(), 1)
    except TypeError as exc:
        return JsonResponse({"error": f"TypeError: {exc}"})
    return JsonResponse({"error": None})


def result(request: HttpRequest, name: str, task_id: str) -> JsonResponse:
    try:
        found = TASKS[name].get_result(task_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"id": task_id, "exists": False}, status=404)
    except TaskResultMismatch:  # the id is another task's
        return JsonResponse({"id": task_id, "mismatch": True}, status=409)
    return JsonResponse({
        "id": found.id,
        "exists": True,
        "status": found.status,
        "return_value": found.return_value if found.status == "SUCCESSFUL" else None,
        "errors": [{"path": e.exception_class_path, "traceback": e.traceback} for e in found.errors],
        "worker_ids": found.worker_ids,
        "enqueued_at": _when(found.enqueued_at),
        "started_at": _when(found.started_at),
        "finished_at": _when(found.finished_at),
        "last_attempted_at": _when(found.last_attempted_at),
        "queue": found.task.queue_name,
    })


urlpatterns = [
    path("enqueue/<str:name>", enqueue),
    path("not-json", enqueue_not_json),
    path("result/<str:name>/<str:task_id>", result),
]
