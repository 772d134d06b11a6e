"""``UWSGI_MULES["PERIODIC"]`` on real uWSGI: the tasks project's INI
(rendered by ``manage.py uwsgi_mules_ini``) with a ``@task`` due every
second; its runs, enqueued by the Django mule holding the scheduler lock,
are counted by due time, across a SIGKILL of that mule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import tasks_framework  # noqa: E402
from tests.support.server import REPO_ROOT, UwsgiServer, free_port  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

from tests.real.test_periodic_real import TAKEOVER, check_every_second_once, wait_for  # noqa: E402
from uwsgi_mules.periodic.leader import holder_pid  # noqa: E402

pytestmark = pytest.mark.real

SETTINGS = "tests.django.periodic_project_settings"


def test_a_periodic_task_runs_once_per_due_time_across_a_kill(real_uwsgi: str, tmp_path: Path) -> None:
    port = free_port()
    ledger = tmp_path / "ledger.jsonl"
    runtime = tmp_path / "runtime"
    env = {"TASKS_SITE_PORT": str(port), "TASKS_SITE_STORE": str(tmp_path / "results.cache"),
           "TASKS_SITE_TOUCH": str(tmp_path / "reload.touch"), "DJANGO_SETTINGS_MODULE": SETTINGS,
           "PERIODIC_LEDGER": str(ledger), "UWSGIMULES_RUNTIME_DIR": str(runtime)}
    (tmp_path / "reload.touch").touch()
    ini = tmp_path / "tasks.ini"  # manage.py uwsgi_mules_ini -o, nothing edited by hand
    subprocess.run([sys.executable, "-m", "django", "uwsgi_mules_ini", "--settings", SETTINGS, "-o", str(ini)],
                   cwd=REPO_ROOT, env={**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}, check=True, timeout=120,
                   capture_output=True)
    server = UwsgiServer(tmp_path, ["--ini", str(ini)], http=False, cwd=REPO_ROOT, env=env)
    server.port = port

    def dues() -> list[float]:
        lines = ledger.read_text().split("\n")[:-1] if ledger.exists() else []
        return [datetime.fromisoformat(json.loads(line)["due"]).timestamp() for line in lines if line]

    with server:
        assert wait_for(lambda: len(dues()) >= 3, 40), server.log_text()[-3000:]
        pid = holder_pid(runtime)
        assert pid
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        assert wait_for(lambda: len(TAKEOVER.findall(server.log_text())) >= 2, 30), server.log_text()[-3000:]
        assert wait_for(lambda: sum(d > killed + 2 for d in dues()) >= 3, 30), server.log_text()[-3000:]
    check_every_second_once(dues(), "Django @task every 1 s, catch_up=all, SIGKILL of the scheduling mule")
