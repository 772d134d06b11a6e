"""The opt-in lease of periodic entries on a real, private redis-server:
two uWSGI instances of one application (each its own runtime and backlog
directory, so each its own scheduler) run each due time once between them,
counted by due time from the ledger both append to."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.celery.conftest import require_celery
from tests.conftest import require_real_uwsgi
from tests.real.test_periodic_real import TAKEOVER, check_every_second_once, wait_for
from tests.support.server import UwsgiServer

pytestmark = [pytest.mark.real, pytest.mark.xdist_group("celery-real")]

APP = "tests.real.periodic_apps.app"


def test_redis_lease_claims_a_due_time_once(redis_url: str) -> None:
    from uwsgi_mules.periodic import RedisLease

    first, second = RedisLease(redis_url, prefix="t1"), RedisLease(redis_url, prefix="t1")
    assert first.claim("app.tasks:f", 1000.0) is True
    assert second.claim("app.tasks:f", 1000.0) is False
    assert second.claim("app.tasks:f", 1001.0) is True
    assert first.client.ttl("t1:app.tasks:f:1000.0") > 86400
    # a scheduler that died while sending 1002 claimed it with the token it recorded: its successor gets through
    assert first.claim("app.tasks:f", 1002.0, "a1") is True
    assert second.claim("app.tasks:f", 1002.0, "a1") is True
    assert second.claim("app.tasks:f", 1002.0, "b2") is False
    assert second.claim("app.tasks:f", 1002.0) is False
    with pytest.raises(ValueError, match="ttl"):
        RedisLease(redis_url, ttl=0)


def instance(workdir: Path, ledger_dir: Path, redis_url: str) -> UwsgiServer:
    backlog = workdir / "backlog"
    backlog.mkdir(parents=True, mode=0o700)
    args = ["--module", f"{APP}:application", "--processes", "1", "--mule=uwsgi_mules.mule:run",
            "--mule=uwsgi_mules.mule:run"]
    env = {"UWSGIMULES_RUNTIME_DIR": str(workdir / "runtime"), "UWSGIMULES_BACKLOG_DIR": str(backlog),
           "UWSGIMULES_PERIODIC_LEASE": redis_url, "MULES_TEST_DIR": str(ledger_dir)}
    return UwsgiServer(workdir, args, env=env)


def test_two_instances_with_the_lease_run_each_due_time_once(tmp_path: Path, redis_url: str) -> None:
    require_celery()
    require_real_uwsgi()
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    path = ledger_dir / "periodic.jsonl"

    def runs() -> list[dict[str, float]]:
        return [json.loads(x) for x in path.read_text().split("\n")[:-1] if x] if path.exists() else []

    with instance(tmp_path / "a", ledger_dir, redis_url) as a, instance(tmp_path / "b", ledger_dir, redis_url) as b:
        assert wait_for(lambda: bool(TAKEOVER.search(a.log_text())) and bool(TAKEOVER.search(b.log_text())), 30)
        both = time.time()
        assert wait_for(lambda: sum(r["due"] > both for r in runs()) >= 6, 40), a.log_text()[-2000:]
    found = runs()
    dues = [r["due"] for r in found]
    by_instance = Counter(Path(str(r["instance"])).parent.name for r in found)
    print(f"\ntwo instances with a Redis lease: runs sent by instance {dict(sorted(by_instance.items()))}")
    check_every_second_once(dues, "every 1 s, two instances, Redis lease")
