"""The views of the "Mules" section: the page, its JSON API, /metrics, the
actions (POST, CSRF-protected by Django, with the act permission)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ....monitor.snapshot import InstanceSources
from ....monitor.web.page import BODY, STATIC_FILES, page_config, safe_json, static_file
from ....monitor.web.service import ActionRefused, Dashboard
from .models import ACT_PERMISSION, VIEW_PERMISSION
from .results import lookup_result

_dashboard: Dashboard | None = None


def dashboard() -> Dashboard:
    """The process's dashboard over the instance (from ``UWSGI_MULES_MONITOR``)."""
    global _dashboard
    if _dashboard is None:
        options: dict[str, Any] = getattr(settings, "UWSGI_MULES_MONITOR", {})
        sources = InstanceSources.from_environment(options.get("STATS"))
        if options.get("RUNTIME_DIR"):
            sources.runtime_dir = Path(options["RUNTIME_DIR"])
        if options.get("BACKLOG_DIR"):
            sources.backlog_dir = Path(options["BACKLOG_DIR"])
        _dashboard = Dashboard(sources, read_only=bool(options.get("READ_ONLY")), result_lookup=lookup_result)
    return _dashboard


def reset_dashboard() -> None:
    """Forget the dashboard (settings changed: tests)."""
    global _dashboard
    _dashboard = None


def _may_view(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION))


def page_context(request: HttpRequest, api: str) -> dict[str, Any]:
    """The template context of the page: its sections and configuration."""
    can_act = request.user.has_perm(ACT_PERMISSION)
    config = page_config(api=api, csrf_header="X-CSRFToken", csrf_token=get_token(request), token_needed=False,
                         can_act=can_act, read_only=dashboard().read_only)
    return {"mules_body": BODY, "mules_config": safe_json(config), "can_act": can_act}


@require_GET
def page(request: HttpRequest) -> HttpResponse:
    if not _may_view(request):
        return HttpResponseForbidden("needs the view permission of the Mules section")
    context = page_context(request, reverse("uwsgi_mules_monitor:snapshot").rsplit("snapshot", 1)[0])
    context["static"] = reverse("uwsgi_mules_monitor:static", args=["x"])[:-1]
    return render(request, "uwsgi_mules_monitor/page.html", context)


@require_GET
def snapshot(request: HttpRequest) -> HttpResponse:
    if not _may_view(request):
        return HttpResponseForbidden("needs the view permission of the Mules section")
    return JsonResponse(dashboard().snapshot_data())


@require_GET
def result(request: HttpRequest) -> HttpResponse:
    if not _may_view(request):
        return HttpResponseForbidden("needs the view permission of the Mules section")
    return JsonResponse(dashboard().result(request.GET.get("id", "")[:200]))


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _may_view(request):
        return HttpResponseForbidden("needs the view permission of the Mules section")
    from ....monitor.metrics import CONTENT_TYPE

    return HttpResponse(dashboard().metrics(), content_type=CONTENT_TYPE)


@require_POST
def act(request: HttpRequest, action: str) -> HttpResponse:
    """Re-send or delete dead tasks: ``{"ids": [...]}`` or ``{"all": true}``."""
    if not (_may_view(request) and request.user.has_perm(ACT_PERMISSION)):
        return JsonResponse({"error": "needs the permission to re-send and delete dead tasks"}, status=403)
    try:
        body = json.loads(request.body or b"{}")
        ids = None if body.get("all") is True else body.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise ActionRefused('send {"ids": ["..."]} or {"all": true}')
        return JsonResponse(dashboard().act(action, ids))
    except (ValueError, AttributeError) as exc:
        return JsonResponse({"error": f"the request body is not a JSON object: {exc}"}, status=400)
    except ActionRefused as exc:
        return JsonResponse({"error": str(exc)}, status=400)


@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponse:
    data = static_file(name)
    if data is None:
        return HttpResponse(status=404)
    return HttpResponse(data, content_type=STATIC_FILES[name])
