"""The page's WSGI app in process: routes, what it refuses (no token, no CSRF,
another origin, read-only, bad ids), escaping, and dead-task actions that
act on each record exactly once even when many requests race."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.monitor.instance_files import SCRIPT, make_instance
from tests.monitor.wsgi_client import actor_headers, call
from uwsgi_mules.mule.delivery.backlog import SUFFIX, load
from uwsgi_mules.mule.delivery.dead import list_dead, resend_dir
from uwsgi_mules.monitor.actions import delete_dead_once, resend_dead_once
from uwsgi_mules.monitor.web import make_app

TOKEN = "s3cret-token"


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    path = tmp_path / "rt"
    make_instance(path, dead=3, waiting=1)
    return path


def _resent_calls(base: Path) -> int:
    directory = resend_dir(base)
    return sum(len(load(p).entries) for p in directory.glob(f"*{SUFFIX}")) if directory.is_dir() else 0


def test_page_and_assets_are_served_with_safe_headers(runtime: Path) -> None:
    app = make_app(runtime_dir=runtime, token=TOKEN)
    page = call(app, "/", script_name="/mules")
    assert page.status == 200 and "/mules/static/dashboard.js" in page.body.decode()
    assert "SameSite=Strict" in page.headers["Set-Cookie"] and "Path=/mules/" in page.headers["Set-Cookie"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert call(app, "/static/dashboard.js").body.startswith(b"/* uwsgi-mules")
    assert call(app, "/static/../../key").status == 404
    assert call(app, "/nope").status == 404


def test_snapshot_api_shows_task_text_as_printable_text(runtime: Path) -> None:
    data = call(make_app(runtime_dir=runtime), "/api/snapshot").json()
    assert [m["mule_id"] for m in data["mules"]] == [1]
    assert len(data["dead"]) == 3
    error = data["dead"][0]["error"]
    assert SCRIPT in error  # kept as text: the page sets it with textContent
    assert "\x1b" not in error and "\\x1b[31mred" in error  # the ANSI escape shows as text


@pytest.mark.parametrize("missing", ["csrf-header", "csrf-cookie", "token", "origin"])
def test_actions_are_refused_without_token_csrf_or_from_another_origin(runtime: Path, missing: str) -> None:
    app = make_app(runtime_dir=runtime, token=TOKEN)
    headers = actor_headers(TOKEN)
    if missing == "csrf-header":
        del headers["X-CSRF-Token"]
    elif missing == "csrf-cookie":
        del headers["Cookie"]
    elif missing == "token":
        headers["X-Mules-Token"] = "wrong"
    else:
        headers["Origin"] = "http://evil.example"
    response = call(app, "/api/dead/resend", method="POST", body={"all": True}, headers=headers)
    assert response.status == 403
    assert len(list_dead(runtime)) == 3 and _resent_calls(runtime) == 0


def test_read_only_and_tokenless_apps_refuse_actions(runtime: Path) -> None:
    for app in (make_app(runtime_dir=runtime, read_only=True, token=TOKEN), make_app(runtime_dir=runtime)):
        response = call(app, "/api/dead/delete", method="POST", body={"all": True}, headers=actor_headers(TOKEN))
        assert response.status in (400, 403)
    assert len(list_dead(runtime)) == 3


def test_bad_ids_are_refused_before_anything_is_done(runtime: Path) -> None:
    app = make_app(runtime_dir=runtime, token=TOKEN)
    response = call(app, "/api/dead/resend", method="POST", body={"ids": ["../../key"]}, headers=actor_headers(TOKEN))
    assert response.status == 400 and "not a dead task id" in response.json()["error"]


def test_resend_one_then_delete_all(runtime: Path) -> None:
    app = make_app(runtime_dir=runtime, token=TOKEN)
    first = list_dead(runtime)[0].id
    response = call(app, "/api/dead/resend", method="POST", body={"ids": [first]}, headers=actor_headers(TOKEN))
    assert response.json() == {"done": [first], "gone": [], "problems": []}
    again = call(app, "/api/dead/resend", method="POST", body={"ids": [first]}, headers=actor_headers(TOKEN))
    assert again.json()["gone"] == [first]
    assert _resent_calls(runtime) == 1
    deleted = call(app, "/api/dead/delete", method="POST", body={"all": True}, headers=actor_headers(TOKEN))
    assert len(deleted.json()["done"]) == 2 and list_dead(runtime) == []
    assert _resent_calls(runtime) == 1


@pytest.mark.parametrize("round_", range(20))
def test_racing_resends_send_each_record_exactly_once(runtime: Path, round_: int) -> None:
    ids = [task.id for task in list_dead(runtime)]
    barrier = threading.Barrier(8)
    reports = []
    errors: list[BaseException] = []

    def click(index: int) -> None:
        barrier.wait()
        act = resend_dead_once if index % 2 else delete_dead_once
        try:  # threads of one process (a threaded server) share its claim directory
            reports.append((act is resend_dead_once, act(runtime, ids if index % 3 else None)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [task_id for _, report in reports for task_id in report.done]
    resent = sum(len(report.done) for is_resend, report in reports if is_resend)
    print(f"ids {len(ids)}, acted on {len(done)}, re-sent {resent}, re-sent calls written {_resent_calls(runtime)}")
    assert errors == []
    assert sorted(done) == sorted(ids)  # each record acted on once: no duplicate, none lost
    assert _resent_calls(runtime) == resent
    assert list_dead(runtime) == [] and not list((runtime / "dead").glob("claiming-*/*"))


def test_result_lookup_and_metrics_routes(runtime: Path) -> None:
    app = make_app(runtime_dir=runtime, result_lookup=lambda rid: {"id": rid, "status": "SUCCESSFUL"} if rid == "a"
                   else None)
    assert call(app, "/api/result?id=a").json() == {"found": True, "id": "a", "status": "SUCCESSFUL"}
    assert call(app, "/api/result?id=b").json()["found"] is False
    assert call(make_app(runtime_dir=runtime), "/api/result?id=a").json()["found"] is False
    metrics = call(app, "/metrics")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        assert metrics.status == 501 and "uwsgi-mules[monitor]" in metrics.json()["error"]
    else:
        assert metrics.status == 200 and b"uwsgi_mules_dead_tasks 3.0" in metrics.body
