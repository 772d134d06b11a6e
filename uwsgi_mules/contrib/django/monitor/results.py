"""A Django task result as plain data, looked up by id in the default task backend."""

from __future__ import annotations

from typing import Any


def _tasks_module() -> Any:
    try:
        from django import tasks  # Django 6
    except ImportError:
        try:
            import django_tasks as tasks  # the backport
        except ImportError:
            return None
    return tasks


def lookup_result(result_id: str) -> dict[str, Any] | None:
    """The result ``result_id`` of the default task backend (None: no such
    result); a backend that cannot look results up says so in ``error``."""
    tasks = _tasks_module()
    if tasks is None:
        return {"error": "Django's task framework is not installed (Django 6, or the django-tasks backport)"}
    try:
        result = tasks.default_task_backend.get_result(result_id)
    except Exception as exc:  # noqa: BLE001 - ResultDoesNotExist, NotImplementedError, a bad id...
        if type(exc).__name__ in ("TaskResultDoesNotExist", "ResultDoesNotExist"):
            return None
        return {"error": f"{type(exc).__name__}: {exc}"}
    data: dict[str, Any] = {"id": result.id, "status": str(getattr(result.status, "value", result.status)),
                            "task": getattr(result.task, "module_path", str(result.task))}
    for name in ("enqueued_at", "started_at", "finished_at", "last_attempted_at"):
        value = getattr(result, name, None)
        data[name] = value.isoformat() if value is not None else None
    if data["status"] == "SUCCESSFUL":
        data["return_value"] = repr(result.return_value)[:2000]
    data["errors"] = [{"exception": getattr(e, "exception_class_path", ""), "traceback": getattr(e, "traceback", "")}
                      for e in getattr(result, "errors", ())]
    return data
