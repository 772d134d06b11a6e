"""Every pickle kept outside the queues is signed: spooled ``@spool``
arguments, results in the cache, backlog files. A gadget in any of them is
never unpickled (on the fake; tests/real/test_security_data.py runs the same
attacks on real uWSGI)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import data_gadget
from tests import fake_delivery_tasks as tasks
from uwsgi_mules import envelope
from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.datakey import DataSigner
from uwsgi_mules.decorators import reset_decorators
from uwsgi_mules.mule.delivery import backlog
from uwsgi_mules.mule.delivery.backlog import FILE_MAGIC, OLD_MAGIC, SavedOffload, save
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime

DATA_APP = "tests.real.security_apps.data_app"
SERVE = "uwsgi_mules.mule:run"
WORK = "tests.fake_delivery_tasks:work"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    data_gadget.FIRED.clear()
    tasks.DONE.clear()
    yield
    data_gadget.FIRED.clear()


@pytest.fixture
def dropin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from uwsgi_mules.testing.dropin import install_dropin

    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    reset_runtime()
    reset_decorators()
    with install_dropin(mules=0, workers=1, caches=["name=uwsgi-mules-results,items=16"]) as installed:
        yield installed
    reset_runtime()
    reset_backends()
    reset_decorators()


def spooled(tmp_path: Path) -> list[str]:
    path = tmp_path / "records" / "spooled.jsonl"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("kind", ["unsigned", "wrong_key", "altered"])
def test_forged_spool_arguments_are_never_unpickled(dropin: Any, tmp_path: Path, kind: str) -> None:
    app = dropin.load(DATA_APP)
    with dropin.fake.as_worker(1):
        assert app.spool_genuine(1)
        assert app.spool_forged(kind)
    assert dropin.fake.run_spooler() == 2
    assert data_gadget.FIRED == []
    assert len(spooled(tmp_path)) == 1, "the genuine task ran"
    assert dropin.fake.spooler.tasks == [], "the forged task was deleted"
    line = next(ln for ln in dropin.fake.log_lines if "refused and deleted" in ln)
    assert "add_job" in line and "never unpickled" in line


def test_a_forged_result_is_never_unpickled_by_the_caller(dropin: Any) -> None:
    app = dropin.load(DATA_APP)
    with dropin.fake.as_worker(1):
        outcome = app.forged_result()
    assert outcome.startswith("refused: ") and "not unpickled" in outcome
    assert data_gadget.FIRED == []


def test_a_genuine_result_still_arrives() -> None:
    from uwsgi_mules.runtime.results import store_result

    with FakeUwsgi(mules=[SERVE], caches=["name=uwsgi-mules-results,items=16"]) as fake:
        store_result("uwsgi-mules:k", {"v": 1}, backend=fake)
        from uwsgi_mules.runtime.results import LocalResult

        raw = fake.cache_get("uwsgi-mules:k", "uwsgi-mules-results")
        assert raw is not None and not raw.startswith(pickle.dumps(("ok", {"v": 1}))[:2])
        assert LocalResult("uwsgi-mules:k", fake, "uwsgi-mules-results").result(timeout=1) == {"v": 1}
        # the same signed bytes moved under another key do not verify
        fake.cache_update("uwsgi-mules:other", raw, 0, "uwsgi-mules-results")
        from uwsgi_mules import UntrustedResult

        with pytest.raises(UntrustedResult):
            LocalResult("uwsgi-mules:other", fake, "uwsgi-mules-results").result(timeout=1)


def gadget_body(label: str) -> bytes:
    return pickle.dumps((WORK, (data_gadget.Gadget(label),), {}, 1, None))


def write_forged_backlog(directory: Path) -> None:
    """Hand-written backlog files whose bodies are gadgets: an old unsigned
    one, and one in the current format signed with another key."""
    directory.mkdir(mode=0o700, exist_ok=True)
    body = gadget_body("backlog-old")
    old = OLD_MAGIC + backlog._QUEUED.pack(0, 1, len(body)) + body
    (directory / "00000000000000000001-1-mule.backlog").write_bytes(old)
    os.chmod(directory / "00000000000000000001-1-mule.backlog", 0o600)
    nonce = b"n" * backlog.NONCE_SIZE
    forged = backlog.encode_entries(
        DataSigner(b"f" * 32), nonce, [SavedOffload(1, gadget_body("backlog-forged"), WORK)]
    )
    path = directory / "00000000000000000002-1-mule.backlog"
    path.write_bytes(FILE_MAGIC + nonce + forged[0])
    os.chmod(path, 0o600)


def test_hand_written_backlog_bodies_never_run(tmp_path: Path) -> None:
    directory = tmp_path / "backlog"
    write_forged_backlog(directory)
    save(directory, [SavedOffload(1, envelope.pack(WORK, (i,), {}, 1), WORK) for i in range(3)])
    with FakeUwsgi(mules=[SERVE], backlog_dir=directory) as fake:
        fake.run_pending()
        lines = list(fake.log_lines)
    assert data_gadget.FIRED == []
    assert dict(tasks.DONE) == {0: 1, 1: 1, 2: 1}
    assert any("unsigned backlog file of an older uwsgi-mules" in ln for ln in lines), lines
    assert any("does not verify with the data key" in ln for ln in lines), lines
    assert sorted(p.name for p in directory.glob("*.corrupt")) == [
        "00000000000000000001-1-mule.backlog.corrupt", "00000000000000000002-1-mule.backlog.corrupt"]
