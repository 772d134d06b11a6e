"""The page as a WSGI app: ``uwsgi-mules dashboard`` serves it, and an
instance can mount it (uWSGI ``--mount /mules=uwsgi_mules.monitor.web.mounted:application``,
or any WSGI router). Routes, relative to where it is mounted::

    GET  /                 the page
    GET  /api/snapshot     the read model as JSON (the page polls it)
    GET  /api/result?id=   a task result (Django projects: see the Django admin section)
    GET  /metrics          Prometheus text exposition (extra ``monitor``)
    GET  /static/NAME      the page's script and style sheet (shipped in the package)
    POST /api/dead/resend  {"ids": [...]} or {"all": true}: re-send dead tasks, each once
    POST /api/dead/delete  the same, deleting

POSTs need the action token and the CSRF token (:mod:`.guard`); a
read-only app refuses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from ..snapshot import InstanceSources
from . import guard
from .page import STATIC_FILES, render_page, static_file
from .service import ActionRefused, Dashboard, ResultLookup

StartResponse = Callable[..., Any]
MAX_BODY = 1 << 20
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "same-origin"),
]


class DashboardApp:
    """The WSGI app over one :class:`~.service.Dashboard`; ``token`` (None: actions off) gates POSTs."""

    def __init__(self, dashboard: Dashboard, *, token: str | None = None, title: str = "uwsgi-mules") -> None:
        self.dashboard = dashboard
        self.token = token
        self.title = title

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if method == "POST" and path.startswith("/api/dead/"):
                return self._action(environ, start_response, path.rsplit("/", 1)[-1])
            if method not in ("GET", "HEAD"):
                return _send(start_response, "405 Method Not Allowed", {"error": "method not allowed"})
            return self._get(environ, start_response, path)
        except ActionRefused as exc:
            return _send(start_response, "400 Bad Request", {"error": str(exc)})

    def _get(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        if path in ("/", ""):
            return self._page(environ, start_response)
        if path == "/api/snapshot":
            return _send(start_response, "200 OK", self.dashboard.snapshot_data())
        if path == "/api/result":
            result_id = parse_qs(environ.get("QUERY_STRING", "")).get("id", [""])[0]
            return _send(start_response, "200 OK", self.dashboard.result(result_id[:200]))
        if path == "/metrics":
            return self._metrics(start_response)
        if path == "/favicon.ico":
            return _raw(start_response, "204 No Content", "image/x-icon", b"")
        if path.startswith("/static/") and path[len("/static/"):] in STATIC_FILES:
            name = path[len("/static/"):]
            return _raw(start_response, "200 OK", STATIC_FILES[name], static_file(name) or b"")
        return _send(start_response, "404 Not Found", {"error": f"no page {path}"})

    def _page(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        root = environ.get("SCRIPT_NAME", "").rstrip("/") + "/"
        csrf = guard.csrf_cookie(environ) or guard.new_token()
        body = render_page(api=root + "api/", static=root + "static/", csrf_header=guard.CSRF_HEADER,
                           csrf_token=csrf, token_needed=self.token is not None, can_act=self.token is not None,
                           read_only=self.dashboard.read_only, title=self.title)
        return _raw(start_response, "200 OK", "text/html; charset=utf-8", body.encode(),
                    [guard.set_cookie_header(csrf, root)])

    def _metrics(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            from ..metrics import CONTENT_TYPE
        except ImportError:
            return _send(start_response, "501 Not Implemented",
                         {"error": "/metrics needs prometheus_client: pip install 'uwsgi-mules[monitor]'"})
        return _raw(start_response, "200 OK", CONTENT_TYPE, self.dashboard.metrics())

    def _action(self, environ: dict[str, Any], start_response: StartResponse, action: str) -> Iterable[bytes]:
        why = guard.refusal(environ, self.token)
        if why is not None:
            return _send(start_response, "403 Forbidden", {"error": why})
        request = _json_body(environ)
        ids = None if request.get("all") is True else request.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise ActionRefused('send {"ids": ["..."]} or {"all": true}')
        return _send(start_response, "200 OK", self.dashboard.act(action, ids))


def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
        data = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except (ValueError, KeyError) as exc:
        raise ActionRefused(f"the request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ActionRefused("the request body is not a JSON object")
    return data


def _send(start_response: StartResponse, status: str, data: Any) -> list[bytes]:
    return _raw(start_response, status, "application/json", json.dumps(data).encode())


def _raw(start_response: StartResponse, status: str, content_type: str, body: bytes,
         extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *_SECURITY_HEADERS, *(extra or [])]
    start_response(status, headers)
    return [body]


def make_app(stats_address: str | None = None, *, runtime_dir: Any = None, backlog_dir: Any = None,
             token: str | None = None, read_only: bool = False, result_lookup: ResultLookup | None = None,
             title: str = "uwsgi-mules") -> DashboardApp:
    """The page over an instance. With neither directory given, the
    instance's own (``UWSGIMULES_RUNTIME_DIR``/``UWSGIMULES_BACKLOG_DIR``, or
    the running backend's: the page mounted in the instance)."""
    from pathlib import Path

    if runtime_dir is None and backlog_dir is None:
        sources = InstanceSources.from_environment(stats_address)
    else:
        sources = InstanceSources(stats_address, Path(runtime_dir) if runtime_dir else None,
                                  Path(backlog_dir) if backlog_dir else None)
    return DashboardApp(Dashboard(sources, read_only=read_only, result_lookup=result_lookup), token=token,
                        title=title)
