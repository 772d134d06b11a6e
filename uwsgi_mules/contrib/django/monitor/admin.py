"""The admin's "Mules" section: an unmanaged model whose changelist is the page
(the django-rq pattern). Its API routes live under the section's URL and go
through the admin site's login, staff and CSRF checks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import views
from .models import VIEW_PERMISSION, Mules


@admin.register(Mules)
class MulesAdmin(admin.ModelAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff and request.user.has_perm(VIEW_PERMISSION))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("api/snapshot", wrap(views.snapshot), name="uwsgi_mules_monitor_snapshot"),
            path("api/result", wrap(views.result), name="uwsgi_mules_monitor_result"),
            path("api/dead/<str:action>", wrap(views.act), name="uwsgi_mules_monitor_act"),
            path("metrics", wrap(views.metrics), name="uwsgi_mules_monitor_metrics"),
            path("static/<str:name>", wrap(views.asset), name="uwsgi_mules_monitor_static"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        api = reverse("admin:uwsgi_mules_monitor_snapshot").rsplit("snapshot", 1)[0]
        context = {**self.admin_site.each_context(request), **views.page_context(request, api),
                   "title": "Mules", "opts": self.model._meta,
                   "static": reverse("admin:uwsgi_mules_monitor_static", args=["x"])[:-1], **(extra_context or {})}
        return TemplateResponse(request, "uwsgi_mules_monitor/admin_page.html", context)
