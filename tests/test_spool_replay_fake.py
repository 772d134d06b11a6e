"""Signed ``@spool(pass_arguments=True)`` tasks on the fake: whatever keys a
task carries the signature covers them (a task without ``args``/``kwargs``
is refused, never called with the raw dict), and a signed task runs once (a
replayed copy is refused). tests/real/test_spool_arguments.py runs the same
attacks on real uWSGI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.core.state import reset_runtime

APP = "tests.real.spool_apps.signed_app"


@pytest.fixture
def dropin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from uwsgi_mules.testing.dropin import install_dropin

    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    reset_runtime()
    reset_decorators()
    with install_dropin(mules=0, workers=1) as installed:
        yield installed
    reset_runtime()
    reset_backends()
    reset_decorators()


def transfers(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "records" / "transfers.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_task_without_arguments_is_refused_not_called_with_the_raw_dict(dropin: Any, tmp_path: Path) -> None:
    app = dropin.load(APP)
    with dropin.fake.as_worker(1):
        assert app.spool_without_arguments()
    assert dropin.fake.run_spooler() == 1
    assert transfers(tmp_path) == []
    assert dropin.fake.spooler.tasks == [], "the forged task was deleted"
    assert any("transfer refused and deleted" in line for line in dropin.fake.log_lines), dropin.fake.log_lines


def test_a_replayed_signed_task_runs_once(dropin: Any, tmp_path: Path) -> None:
    app = dropin.load(APP)
    with dropin.fake.as_worker(1):
        assert app.spool_replayed(10, 3)
    for _ in range(3):
        dropin.fake.run_spooler()
    ran = transfers(tmp_path)
    refused = [line for line in dropin.fake.log_lines if "transfer refused and deleted" in line]
    print(f"\n1 genuine task + 3 replayed copies: ran {len(ran)}, refused {len(refused)}")
    assert [(r["amount"], r["to"]) for r in ran] == [(10, "bob")]
    assert len(refused) == 3 and all("already ran" in line or "replay" in line for line in refused), refused
    assert dropin.fake.spooler.tasks == []


def test_a_signed_spoolforever_task_runs_at_every_scan(dropin: Any, tmp_path: Path) -> None:
    from uwsgi_mules import decorators as ud

    seen: list[int] = []

    @ud.spoolforever(pass_arguments=True)
    def every_scan(n: int) -> None:
        seen.append(n)

    with dropin.fake.as_worker(1):
        every_scan(5)
    for _ in range(3):
        dropin.fake.run_spooler()
    assert seen == [5, 5, 5], "the same spool file runs again: not a replay"
    assert not any("refused" in line for line in dropin.fake.log_lines)
