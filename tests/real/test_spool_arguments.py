"""Spool arguments never collide or change silently: the real
``uwsgidecorators`` and ``uwsgi_mules.decorators`` on real uWSGI, the same
cases on the fake, and the typed ``spool()``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import UwsgiServer
from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.core.state import reset_runtime

from .spool_apps.cases import CASES
from .test_mule_decorators import call

APP = "tests.real.spool_apps.app"

#: what the real uwsgidecorators does with each case on uWSGI 2.0
ORIGINAL = {
    "plain": ("ok", ""),
    "int_value": ("error", "ValueError"),
    "float_value": ("error", "ValueError"),
    "int_key": ("error", "ValueError"),
    "str_and_bytes_key": ("ok", ""),  # both keys become b"a": one value is lost
}
ORIGINAL_RECEIVED = {
    "plain": {"a": "'x'"},
    "str_and_bytes_key": {"a": "'y'"},
}
#: raw ``uwsgi.spool`` with a value that is not bytes (the same on the fake)
RAW = {"int": ("error", "ValueError"), "float": ("error", "ValueError"), "str": ("error", "ValueError"),
       "bytearray": ("ok", "")}
#: uwsgi_mules.decorators: only the plain case is spooled, the rest raise a ValueError
OURS = {
    "plain": ("ok", ""),
    "int_value": ("error", "SpoolError"),
    "float_value": ("error", "SpoolError"),
    "int_key": ("error", "SpoolError"),
    "str_and_bytes_key": ("error", "SpoolKeyCollision"),
}


def read(workdir: Path) -> dict[str, dict[str, str]]:
    path = workdir / "records" / "spooled.jsonl"
    lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln] if path.exists() else []
    return {r["case"]: r["values"] for r in lines}


def run_cases(workdir: Path, implementation: str) -> tuple[dict[str, tuple[str, str]], dict[str, Any], Any]:
    workdir.mkdir(parents=True)
    spool_dir = workdir / "spool"
    spool_dir.mkdir()
    args = ["--module", f"{APP}:application", "--processes", "1", "--spooler", str(spool_dir),
            "--spooler-frequency", "1"]
    with UwsgiServer(workdir, args, env={"SPOOL_APP_DECORATORS": implementation}) as server:
        results = {case: tuple(call(server, f"{APP}:attempt", case)) for case in CASES}
        typed = tuple(call(server, f"{APP}:attempt_typed_collision"))
        raw = {kind: tuple(call(server, f"{APP}:attempt_raw", kind)) for kind in RAW}
        assert raw == RAW
        expected = sum(1 for status, _ in results.values() if status == "ok")
        deadline = time.monotonic() + 30
        while len(read(workdir)) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # one more spooler scan: nothing else may run
        left = sorted(p.name for p in spool_dir.rglob("uwsgi_spoolfile_on_*"))
    return results, {"received": read(workdir), "left": left}, typed


@pytest.mark.real
def test_spool_arguments_on_real_uwsgi(tmp_path: Path) -> None:
    require_real_uwsgi()
    results, outcome, typed = run_cases(tmp_path / "original", "uwsgidecorators")
    assert results == ORIGINAL
    assert outcome == {"received": {**ORIGINAL_RECEIVED, "raw_bytearray": {"n": "'ok'"}}, "left": []}
    assert typed == ("error", "SpoolKeyCollision")
    results, outcome, typed = run_cases(tmp_path / "ours", "uwsgi_mules")
    assert results == OURS
    assert outcome == {"received": {"plain": {"a": "'x'"}, "raw_bytearray": {"n": "'ok'"}}, "left": []}
    assert typed == ("error", "SpoolKeyCollision")


@pytest.fixture
def dropin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from uwsgi_mules.testing.dropin import install_dropin

    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    reset_runtime()
    with install_dropin(mules=0, workers=1) as installed:
        yield installed
    reset_runtime()
    reset_backends()
    reset_decorators()


def test_spool_arguments_on_the_fake(dropin: Any, tmp_path: Path) -> None:
    app = dropin.load(APP)
    with dropin.fake.as_worker(1):
        assert {case: app.attempt(case) for case in CASES} == OURS
        assert app.attempt_typed_collision() == ("error", "SpoolKeyCollision")
        assert {kind: app.attempt_raw(kind) for kind in RAW} == RAW
    assert dropin.fake.run_spooler() == 2
    assert read(tmp_path) == {"plain": {"a": "'x'"}, "raw_bytearray": {"n": "'ok'"}}
    assert dropin.fake.spooler.tasks == []


def test_typed_spool_converts_numbers_and_refuses_collisions(dropin: Any) -> None:
    from uwsgi_mules.spooler import SpoolKeyCollision, spool

    with dropin.fake.as_worker(1):
        spool({"n": 5, "x": 1.5, 7: "seven"})
        assert dropin.fake.spooler.tasks[-1].args == {b"n": b"5", b"x": b"1.5", b"7": b"seven"}
        for args, kwargs in [({1: "a", "1": "b"}, {}), ({"a": "x", b"a": "y"}, {}), ({"a": "x"}, {"a": "y"})]:
            with pytest.raises(SpoolKeyCollision):
                spool(args, **kwargs)
    assert len(dropin.fake.spooler.tasks) == 1


SIGNED_APP = "tests.real.spool_apps.signed_app"


def transfers(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "records" / "transfers.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln] if path.exists() else []


def run_signed(workdir: Path, spool_dir: Path, calls: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    """Start the signed app, make ``calls``, wait for the spooler to empty its
    directory and one more scan; the log lines of refused ``transfer`` tasks."""
    args = ["--module", f"{SIGNED_APP}:application", "--processes", "1", "--spooler", str(spool_dir),
            "--spooler-frequency", "1"]
    with UwsgiServer(workdir, args) as server:
        for name, call_args in calls:
            assert call(server, f"{SIGNED_APP}:{name}", *call_args)
        deadline = time.monotonic() + 30
        while list(spool_dir.rglob("uwsgi_spoolfile_on_*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # one more spooler scan: nothing else may run
        log = server.log_text()
    assert not list(spool_dir.rglob("uwsgi_spoolfile_on_*"))
    return [line for line in log.splitlines() if "transfer refused and deleted" in line]


@pytest.mark.real
def test_signed_spool_tasks_cannot_be_bypassed_nor_replayed_on_real_uwsgi(tmp_path: Path) -> None:
    """A task omitting args/kwargs is refused (never called with the raw
    dict); a genuine signed task spooled 3 more times runs once, and again
    once after a restart of the instance (the used nonces live in the spool
    directory)."""
    require_real_uwsgi()
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    refused = run_signed(tmp_path, spool_dir, [("spool_without_arguments", ()), ("spool_replayed", (10, 3))])
    print(f"\nforged + 1 genuine + 3 replayed: ran {len(transfers(tmp_path))}, refused {len(refused)}")
    assert [(r["amount"], r["to"]) for r in transfers(tmp_path)] == [(10, "bob")]
    assert len(refused) == 4, refused
    refused = run_signed(tmp_path, spool_dir, [("spool_saved_packets", ())])
    print(f"after a restart, the genuine packet spooled again: ran {len(transfers(tmp_path))}, refused {len(refused)}")
    assert [(r["amount"], r["to"]) for r in transfers(tmp_path)] == [(10, "bob")]
    assert len(refused) == 1 and "already ran" in refused[0], refused
