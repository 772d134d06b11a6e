"""Every pickle kept outside the queues is signed, on real uWSGI: spooled
``@spool`` arguments, results in the cache, backlog files (the same attacks
on the fake: tests/test_security_data_fake.py). A gadget anywhere leaves a
marker file when unpickled; none may appear. Backlog tasks are counted by id."""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.data_gadget import MARKER_ENV
from tests.support.server import UwsgiServer
from tests.test_security_data_fake import write_forged_backlog
from uwsgi_mules import envelope
from uwsgi_mules.mule.delivery.backlog import CORRUPT_SUFFIX, SavedOffload, save

from .test_mule_decorators import call
from .test_reload_delivery import count, make_server, report, send, wait_for

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

DATA_APP = "tests.real.security_apps.data_app"
WORK = "tests.real.delivery_apps.app:work"
#: the forged spool tasks of the app (each carries a gadget in its pickled args)
SPOOL_FORGERIES = ("unsigned", "wrong_key", "altered")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    require_real_uwsgi()
    yield tmp_path


def test_a_truncated_backlog_file_at_start_replays_its_intact_entries_once(workdir: Path) -> None:
    """199 entries saved by a stopped instance, the file cut by 3 bytes (a
    full disk), plus hand-written files whose bodies are pickle gadgets."""
    backlog = workdir / "backlog"
    total = 199
    path = save(backlog, [SavedOffload(1, envelope.pack(WORK, (i, 0), {}, 1), WORK) for i in range(total)])
    assert path is not None
    path.write_bytes(path.read_bytes()[:-3])
    write_forged_backlog(backlog)
    marker = workdir / "gadget-fired"
    server = make_server(workdir, env={"UWSGIMULES_BACKLOG_DIR": str(backlog), MARKER_ENV: str(marker)})
    with server:
        wait_for(lambda: len(count(workdir)) >= total - 1, 60)
        sent_after = send(server, 5, start=1000, ms=0)  # the mule keeps serving
        wait_for(lambda: sum(1 for i in count(workdir) if i >= 1000) >= 5, 30)
        time.sleep(1.0)  # a duplicate would show up here
        done = count(workdir)
        log = server.log_text()
    replayed = collections.Counter({i: n for i, n in done.items() if i < total})
    lost, duplicated = report("truncated backlog file at start", total - 1, replayed, range(total - 1))
    assert not lost and not duplicated, log[-4000:]
    assert total - 1 not in done, "the cut entry is not trusted"
    assert sent_after == 5 and all(done[i] == 1 for i in range(1000, 1005))
    assert not marker.exists(), f"a gadget ran: {marker.read_text()}"
    assert "is damaged" in log and "198 intact" in log, log[-4000:]
    aside = sorted(p.name.split("-", 2)[-1] for p in backlog.glob(f"*{CORRUPT_SUFFIX}"))
    assert aside == [f"mule.backlog{CORRUPT_SUFFIX}"] * 3, aside
    assert not list(backlog.glob("*.backlog")) and not list(backlog.glob("*.claimed-*"))


def spooled(workdir: Path) -> list[dict[str, object]]:
    path = workdir / "records" / "spooled.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln] if path.exists() else []


def test_forged_spool_arguments_and_results_are_never_unpickled(workdir: Path) -> None:
    spool_dir = workdir / "spool"
    spool_dir.mkdir()
    marker = workdir / "gadget-fired"
    args = ["--module", f"{DATA_APP}:application", "--processes", "1", "--spooler", str(spool_dir),
            "--spooler-frequency", "1", "--cache2", "name=uwsgi-mules-results,items=16,blocksize=65536"]
    with UwsgiServer(workdir, args, env={"MULES_TEST_DIR": str(workdir), MARKER_ENV: str(marker)}) as server:
        for kind in SPOOL_FORGERIES:
            assert call(server, f"{DATA_APP}:spool_forged", kind)
        assert call(server, f"{DATA_APP}:spool_genuine", 1)
        outcome = call(server, f"{DATA_APP}:forged_result")
        assert wait_for(lambda: len(spooled(workdir)) >= 1 and not list(spool_dir.rglob("uwsgi_spoolfile_on_*")), 30)
        time.sleep(1.5)  # one more spooler scan
        left = sorted(p.name for p in spool_dir.rglob("uwsgi_spoolfile_on_*"))
        log = server.log_text()
    assert [(r["task_id"], r["total"]) for r in spooled(workdir)] == [(1, 3)], "the genuine task ran once"
    assert left == [], "the forged tasks were deleted"
    assert log.count("refused and deleted") == len(SPOOL_FORGERIES), log[-3000:]
    assert outcome.startswith("refused: ") and "not unpickled" in outcome
    assert not marker.exists(), f"a gadget ran: {marker.read_text()}"
    key = spool_dir / ".uwsgi-mules-data.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "uwsgi-mules-data.key" not in log, "uWSGI's spooler ignores the key file"
