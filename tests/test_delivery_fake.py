"""The delivery scenarios of tests/real/test_reload_delivery.py on the fake:
same outcomes, counted by id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import fake_delivery_tasks as tasks
from uwsgi_mules.fake import FakeUwsgi

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.DONE.clear()
    tasks.CRASHED.clear()
    yield


def lost_and_duplicated(total: int) -> tuple[list[int], list[int]]:
    lost = sorted(set(range(total)) - set(tasks.DONE))
    duplicated = sorted(i for i, n in tasks.DONE.items() if n > 1)
    print(f"\nsent {total}, executed {sum(tasks.DONE.values())}, lost {len(lost)}, duplicated {len(duplicated)}")
    return lost, duplicated


def test_reload_keeps_every_queued_offload() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(250):
            assert tasks.work(i)
        fake.run_pending(limit=10)
        assert fake.reload() == 240
        fake.run_pending()
    assert lost_and_duplicated(250) == ([], [])


def test_stop_and_start_with_a_backlog_dir(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        for i in range(250):
            tasks.work(i)
        fake.run_pending(limit=11)
        assert fake.shutdown() == 239
        assert any("saved 239 queued offload(s)" in line for line in fake.log_lines)
    assert list(backlog.glob("*.backlog"))
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        fake.run_pending()
    assert lost_and_duplicated(250) == ([], [])
    assert not [p for p in backlog.iterdir() if not p.name.startswith(".")], "the replayed file is removed"


def test_stop_without_a_backlog_dir_logs_what_it_discarded() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(100):
            tasks.work(i)
        fake.run_pending(limit=4)
        assert fake.shutdown() == 96
        line = next(ln for ln in fake.log_lines if "discarded" in ln)
    assert "ERROR discarded 96 queued offload(s) at stop (tests.fake_delivery_tasks:work x96)" in line


def test_crash_names_the_task_and_retries_rerun_it() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        for i in range(3):
            tasks.crash_first(i)
        fake.run_pending()
        assert tasks.DONE == {0: 1, 1: 1, 2: 1}
        tasks.DONE.clear()
        tasks.crash_no_retries(7)
        tasks.always_crash(9)
        fake.run_pending()
        tasks.work(100)
        assert fake.run_pending() == 1, "the mule keeps serving after a dead task"
        log = "\n".join(fake.log_lines)
    assert tasks.DONE == {7: 1, 9: 3, 100: 1}, "1 run + 2 retries, then dead"
    assert "died while running tests.fake_delivery_tasks:crash_no_retries(*(7,)" in log
    assert "the task is lost" in log
    assert log.count("DEAD task tests.fake_delivery_tasks:always_crash(*(9,)") == 1


def test_a_truncated_backlog_file_at_start_replays_its_intact_entries_once(tmp_path: Path) -> None:
    """tests/real/test_security_data.py runs the same on real uWSGI."""
    from uwsgi_mules import envelope
    from uwsgi_mules.mule.delivery.backlog import SavedOffload, save

    backlog = tmp_path / "backlog"
    work = "tests.fake_delivery_tasks:work"
    path = save(backlog, [SavedOffload(1, envelope.pack(work, (i,), {}, 1), work) for i in range(199)])
    assert path is not None
    path.write_bytes(path.read_bytes()[:-3])
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        fake.run_pending()
        lines = list(fake.log_lines)
    assert lost_and_duplicated(198) == ([], [])
    assert 198 not in tasks.DONE
    assert any("is damaged" in line and "198 intact" in line for line in lines), lines
    assert [p.name.endswith(".corrupt") for p in backlog.iterdir() if not p.name.startswith(".")] == [True]


def test_saved_offloads_for_a_mule_the_layout_no_longer_has_are_parked(tmp_path: Path) -> None:
    """As a real mule does (tests/test_backlog_files.py runs the mule's own send path)."""
    from uwsgi_mules import envelope
    from uwsgi_mules.mule.delivery.backlog import SavedOffload, save

    backlog = tmp_path / "backlog"
    work = "tests.fake_delivery_tasks:work"
    save(backlog, [SavedOffload(t, envelope.pack(work, (i,), {}, t), work) for i, t in enumerate([1, 3, 1, 3])])
    with FakeUwsgi(mules=[SERVE], backlog_dir=backlog) as fake:
        fake.run_pending()
        lines = list(fake.log_lines)
    assert dict(tasks.DONE) == {0: 1, 2: 1}
    assert any("2 saved offload(s) can never be sent" in line for line in lines), lines
    assert [p.suffix for p in backlog.iterdir() if not p.name.startswith(".")] == [".parked"]
