"""The example site under the real ``uwsgi`` binary: a view offloads, a Django mule writes the row."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.support.server import UwsgiServer, free_port  # noqa: E402

pytestmark = pytest.mark.real

SITE_DIR = Path(__file__).resolve().parents[2] / "examples" / "django_site"
REPO_ROOT = SITE_DIR.parents[1]


def _post(server: UwsgiServer, path: str) -> dict[str, object]:
    request = urllib.request.Request(server.base_url + path, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


def _rows(db: Path) -> list[tuple[int, str, str, int | None]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT id, text, status, mule FROM notes_note ORDER BY id").fetchall()


def _wait_rows(db: Path, condition: object, timeout: float = 30.0) -> list[tuple[int, str, str, int | None]]:
    deadline = time.monotonic() + timeout
    rows = _rows(db)
    while time.monotonic() < deadline:
        rows = _rows(db)
        if condition(rows):  # type: ignore[operator]
            return rows
        time.sleep(0.05)
    raise AssertionError(f"rows not as expected after {timeout}s: {rows}")


@pytest.fixture
def site(real_uwsgi: str, tmp_path: Path) -> UwsgiServer:
    """The example site's INI, as committed, on a free port with a fresh SQLite
    file, started from the project directory as documented."""
    db = tmp_path / "site.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SITE_DB": str(db),
        "PYTHONPATH": os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=SITE_DIR, env=env, check=True, timeout=120,
    )
    port = free_port()
    text = (SITE_DIR / "ini" / "site.ini").read_text()
    assert "127.0.0.1:8000" in text
    ini = tmp_path / "site.ini"
    assert "store=uwsgi-mules-tasks.cache" in text  # the Django task results: kept out of the source tree here
    text = text.replace("store=uwsgi-mules-tasks.cache", f"store={tmp_path / 'tasks.cache'}")
    ini.write_text(text.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    server = UwsgiServer(tmp_path, ["--ini", str(ini)], http=False, cwd=SITE_DIR, env={"DJANGO_SITE_DB": str(db)})
    server.port = port
    server.db = db  # type: ignore[attr-defined]
    return server


def test_view_offloads_and_a_django_mule_writes_the_row(site: UwsgiServer) -> None:
    db: Path = site.db  # type: ignore[attr-defined]
    with site:
        for mule_id in (1, 2):
            site.wait_for_log(f"Django mule {mule_id} serving offloads", timeout=30)
        site.wait_for_log("spawned uWSGI worker 2", timeout=30)
        assert _post(site, "/notes/write?text=hello") == {"queued": "hello"}
        rows = _wait_rows(db, lambda r: len(r) == 1)
        assert rows[0][1:3] == ("hello", "written") and rows[0][3] in (1, 2)

        # on_commit: the row is committed before the message is sent, the mule finds it
        ids = [_post(site, f"/notes/submit?text=n{i}")["id"] for i in range(5)]
        rows = _wait_rows(db, lambda r: sum(1 for row in r if row[2] == "processed") == 5)
        assert sorted(row[0] for row in rows if row[2] == "processed") == sorted(ids)
        assert {row[3] for row in rows if row[2] == "processed"} <= {1, 2}
        site.wait_for_log("INFO notes.mules: mule", timeout=10)  # Django's LOGGING config in the mule

        # the Django task of the example (@task, MulesBackend): a mule of farm "notes" counts the words
        note_id = _post(site, "/notes/submit?text=three%20short%20words")["id"]
        task_id = _post(site, f"/notes/{note_id}/words")["task"]
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(f"{site.base_url}/tasks/{task_id}", timeout=30) as response:
                body = json.loads(response.read())
            if body["status"] == "SUCCESSFUL" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert body["status"] == "SUCCESSFUL", body
        assert body["result"]["note"] == note_id and body["result"]["words"] == 3 and body["result"]["mule"] in (1, 2)
        log = site.log_text()
    assert "Traceback" not in log, log
