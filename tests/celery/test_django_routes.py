"""``UWSGI_MULES["ROUTES"]``: validated with errors naming the key, applied
in ``ready()``; the example site's settings switch routes farm "notes"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.celery.conftest import require_celery
from tests.support.server import REPO_ROOT

pytest.importorskip("django")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from uwsgi_mules.contrib.django.conf import parse_settings  # noqa: E402


def test_routes_are_parsed() -> None:
    settings = parse_settings({"ROUTES": {"reports": {"APP": "proj.celery:app"}, 2: {"APP": "p:a", "QUEUE": "q"}}})
    assert settings.routes == (("reports", "proj.celery:app", None), (2, "p:a", "q"))
    assert parse_settings(None).routes == ()


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (["reports"], r"\['ROUTES'\] must be a dict"),
        ({"reports": "proj.celery:app"}, r"\['ROUTES'\] \['reports'\] must be a dict"),
        ({"reports": {"APP": "proj.celery"}}, r"\['reports'\]\['APP'\] must name the Celery app"),
        ({"reports": {"APP": "p:a", "QUEUE": ""}}, r"\['reports'\]\['QUEUE'\]"),
        ({"reports": {"APP": "p:a", "QUEUES": "x"}}, r"\['reports'\] has unknown keys \['QUEUES'\]"),
        ({-1: {"APP": "p:a"}}, r"key -1 must be a farm name or a mule id"),
        ({True: {"APP": "p:a"}}, r"key True must be"),
    ],
)
def test_bad_routes_name_the_key(routes: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        parse_settings({"ROUTES": routes})
    assert "ROUTES" in str(info.value)
    import re

    assert re.search(message, str(info.value)), str(info.value)


SCRIPT = """
import json, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
django.setup()
from uwsgi_mules.contrib.celery import routes_of
print(json.dumps({k: [r.queue, r.app.main] for k, r in routes_of().items()}))
"""


@pytest.mark.parametrize("broker", [True, False])
def test_example_site_settings_switch_routes_its_farm(broker: bool) -> None:
    require_celery()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UWSGI", "DJANGO_SITE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "examples" / "django_site")])
    env["DJANGO_SITE_DB"] = ":memory:"
    if broker:
        env["DJANGO_SITE_CELERY_BROKER"] = "redis://127.0.0.1:1/0"  # routing connects only when sending
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120,
        cwd=REPO_ROOT / "examples" / "django_site",
    )
    assert out.returncode == 0, out.stderr
    routes = json.loads(out.stdout.strip().splitlines()[-1])
    assert routes == ({"farm 'notes'": ["notes", "django_site"]} if broker else {})
