"""The standalone page's protections: the action token and CSRF.

Actions (POST) need both:

- the action token (``--token``, ``UWSGIMULES_DASHBOARD_TOKEN``, or one
  made at start and printed), sent in the ``X-Mules-Token`` header: who
  may act;
- a CSRF token: the page's cookie (``SameSite=Strict``) echoed in the
  ``X-CSRF-Token`` header. A cross-site form cannot set a header and a
  cross-site script cannot read the cookie, so a page elsewhere cannot make
  a logged-in browser act. The ``Origin`` header, when sent, must be this host.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from typing import Any

CSRF_COOKIE = "uwsgi_mules_csrf"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_HEADER = "X-Mules-Token"
TOKEN_ENV = "UWSGIMULES_DASHBOARD_TOKEN"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_cookie(environ: dict[str, Any]) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(environ.get("HTTP_COOKIE", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no cookie
        return None
    morsel = cookie.get(CSRF_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def set_cookie_header(value: str, path: str) -> tuple[str, str]:
    return ("Set-Cookie", f"{CSRF_COOKIE}={value}; Path={path or '/'}; SameSite=Strict")


def _header(environ: dict[str, Any], name: str) -> str:
    return str(environ.get("HTTP_" + name.upper().replace("-", "_"), ""))


def refusal(environ: dict[str, Any], token: str | None) -> str | None:
    """Why the POST in ``environ`` may not act (None: it may)."""
    origin = _header(environ, "Origin")
    host = str(environ.get("HTTP_HOST", ""))
    if origin and origin.split("://", 1)[-1] != host:
        return f"cross-origin request from {origin}"
    cookie = csrf_cookie(environ)
    sent = _header(environ, CSRF_HEADER)
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return "missing or wrong CSRF token (reload the page)"
    if token is None:
        return "actions are off: no action token is configured"
    if not hmac.compare_digest(_header(environ, TOKEN_HEADER).encode(), token.encode()):
        return "missing or wrong action token"
    return None
