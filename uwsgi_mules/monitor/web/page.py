"""The page's HTML shell. Everything it shows is drawn by ``static/dashboard.js``
from the JSON API with ``textContent`` only; the few values put in the HTML
are escaped, and the configuration is JSON in a ``<script type="application/json">``
block (``<``, ``>`` and ``&`` written as ``\\u003c``... so no text can close it)."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

STATIC_FILES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}

#: the page's sections (the Django admin section puts them in its own template)
BODY = """<div id="instance" class="instance">loading...</div>
<main class="mules-page">
<section id="alerts"></section>
<section><h2>Queues, mules and farms</h2><div id="cards" class="cards"></div></section>
<section><h2>Depth and throughput</h2><div id="graph" class="graph"></div></section>
<section><h2>Tasks</h2><div id="tasks"></div></section>
<section><h2>Waiting calls</h2><div id="waiting"></div></section>
<section id="schedule-section" hidden><h2>Periodic tasks</h2><div id="schedule"></div></section>
<section><h2>Dead tasks <span id="dead-count" class="count"></span></h2>
<div id="dead-actions" class="actions"></div><div id="action-result" role="status"></div><div id="dead"></div></section>
<section><h2>Task result</h2><form id="result-form"><input id="result-id" name="id" placeholder="task result id"
 autocomplete="off"> <button type="submit">Look up</button></form><pre id="result" class="result"></pre></section>
</main>
"""

_SHELL = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{static}dashboard.css">
</head><body>
<header><h1>{title}</h1></header>
{body}<script type="application/json" id="mules-config">{config}</script>
<script src="{static}dashboard.js"></script>
</body></html>
"""


def page_config(*, api: str, csrf_header: str, csrf_token: str, token_needed: bool, can_act: bool,
                read_only: bool, refresh_ms: int = 1000) -> dict[str, Any]:
    """What ``dashboard.js`` reads from the ``mules-config`` block."""
    return {"api": api, "csrfHeader": csrf_header, "csrfToken": csrf_token, "tokenNeeded": token_needed,
            "canAct": can_act and not read_only, "readOnly": read_only, "refreshMs": refresh_ms}


def safe_json(value: Any) -> str:
    """JSON that can sit inside a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(*, api: str, static: str, csrf_header: str, csrf_token: str, token_needed: bool,
                can_act: bool, read_only: bool, title: str = "uwsgi-mules", refresh_ms: int = 1000) -> str:
    """The page; ``api`` and ``static`` are URL prefixes ending in ``/``."""
    config = page_config(api=api, csrf_header=csrf_header, csrf_token=csrf_token, token_needed=token_needed,
                         can_act=can_act, read_only=read_only, refresh_ms=refresh_ms)
    return _SHELL.format(title=html.escape(title), static=html.escape(static, quote=True), body=BODY,
                         config=safe_json(config))


def static_file(name: str) -> bytes | None:
    """The bytes of a packaged asset (None: no such asset)."""
    if name not in STATIC_FILES:
        return None
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
