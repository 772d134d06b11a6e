"""The admin's "Mules" section with Django's test client (run by
tests/django/test_admin_monitor.py in a process of its own:
``DJANGO_SETTINGS_MODULE=tests.django.admin_site.settings``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

django.setup()

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from tests.monitor.instance_files import SCRIPT, make_instance  # noqa: E402
from uwsgi_mules.contrib.django.monitor.views import reset_dashboard  # noqa: E402
from uwsgi_mules.mule.delivery.dead import list_dead  # noqa: E402

RUNTIME = Path(os.environ["ADMIN_SITE_RUNTIME_DIR"])
ADMIN = "/admin/uwsgi_mules_monitor/mules/"


@pytest.fixture(scope="module", autouse=True)
def database() -> None:
    call_command("migrate", verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def instance() -> Iterator[None]:
    make_instance(RUNTIME, dead=2, waiting=1)
    reset_dashboard()
    yield
    for record in (RUNTIME / "dead").glob("*.dead"):
        record.unlink()


def user(name: str, *perms: str, staff: bool = True) -> Client:
    account, _ = User.objects.get_or_create(username=name, defaults={"is_staff": staff})
    account.user_permissions.set([Permission.objects.get(codename=p) for p in perms])
    client = Client(enforce_csrf_checks=True)
    client.force_login(account)
    return client


def csrf_post(client: Client, url: str, body: dict[str, object]) -> object:
    page = client.get(ADMIN)
    token = page.cookies["csrftoken"].value
    return client.post(url, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token)


def test_anonymous_is_sent_to_the_login() -> None:
    response = Client().get(ADMIN)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_the_view_permission_is_refused() -> None:
    client = user("nobody")
    assert client.get(ADMIN).status_code == 403
    assert client.get(ADMIN + "api/snapshot").status_code == 403
    assert "Mules" not in client.get("/admin/").content.decode()


def test_viewer_sees_the_section_and_the_snapshot_without_actions() -> None:
    client = user("viewer", "view_mules")
    assert "Mules" in client.get("/admin/").content.decode()
    page = client.get(ADMIN).content.decode()
    assert 'id="dead"' in page and "dashboard.js" in page and '"canAct": false' in page
    data = client.get(ADMIN + "api/snapshot").json()
    assert len(data["dead"]) == 2 and SCRIPT in data["dead"][0]["error"]
    assert "\x1b" not in data["dead"][0]["error"]
    assert client.get(ADMIN + "static/dashboard.js").status_code == 200
    refused = csrf_post(client, ADMIN + "api/dead/resend", {"all": True})
    assert refused.status_code == 403 and len(list_dead(RUNTIME)) == 2


def test_actor_resends_once_and_needs_the_csrf_token() -> None:
    client = user("actor", "view_mules", "act_on_mules")
    assert '"canAct": true' in client.get(ADMIN).content.decode()
    first = list_dead(RUNTIME)[0].id
    no_csrf = client.post(ADMIN + "api/dead/resend", json.dumps({"ids": [first]}), content_type="application/json")
    assert no_csrf.status_code == 403 and len(list_dead(RUNTIME)) == 2
    done = csrf_post(client, ADMIN + "api/dead/resend", {"ids": [first]})
    assert done.status_code == 200 and done.json() == {"done": [first], "gone": [], "problems": []}
    again = csrf_post(client, ADMIN + "api/dead/resend", {"ids": [first]})
    assert again.json()["gone"] == [first]
    deleted = csrf_post(client, ADMIN + "api/dead/delete", {"all": True})
    assert len(deleted.json()["done"]) == 1 and list_dead(RUNTIME) == []


def test_the_url_include_has_the_same_views_and_permissions() -> None:
    assert user("nobody2").get("/mules/").status_code == 403
    client = user("viewer2", "view_mules")
    assert client.get("/mules/").status_code == 200
    assert len(client.get("/mules/api/snapshot").json()["dead"]) == 2


def test_task_result_is_looked_up_by_id() -> None:
    from django.conf import settings

    if not settings.TASKS:
        pytest.skip("no Django task framework installed (Django 6 or django-tasks)")
    from tests.django.admin_site.tasks import add

    enqueued = add.enqueue(2, 3)
    client = user("viewer3", "view_mules")
    data = client.get(ADMIN + "api/result", {"id": enqueued.id}).json()
    assert data["found"] is True and data["id"] == enqueued.id and data["task"].endswith("tasks.add")
    assert data["status"] == "READY"
    assert client.get(ADMIN + "api/result", {"id": "no-such-id"}).json()["found"] is False


def test_viewer_sees_the_periodic_tasks() -> None:
    from tests.monitor.test_schedule_view import OUTCOME, write_state

    write_state(RUNTIME)
    try:
        client = user("viewer", "view_mules")
        page = client.get(ADMIN).content.decode()
        assert 'id="schedule"' in page and "Periodic tasks" in page
        rows = {row["entry"]: row for row in client.get(ADMIN + "api/snapshot").json()["schedule"]}
        assert sorted(rows) == ["app.jobs:cleanup", "app.jobs:report", "app.jobs:stuck"]
        assert rows["app.jobs:cleanup"]["outcome"] == "sent" and rows["app.jobs:cleanup"]["next_due"] is not None
        report = rows["app.jobs:report"]["outcome"]
        assert "<script>" in report and "\x1b" not in report and OUTCOME.replace("\x1b", "\\x1b") == report
    finally:
        (RUNTIME / "periodic-state").unlink()
