"""The durable pieces of retries and run-later without uWSGI: the waiting
room's file, the bounded dead store and ``uwsgi-mules dead``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import fake_delivery_tasks
from uwsgi_mules.cli import main
from uwsgi_mules.mule.delivery.backlog import load
from uwsgi_mules.mule.delivery.dead import DeadStore, list_dead, resend_dir
from uwsgi_mules.mule.delivery.waiting import WaitingRoom
from uwsgi_mules.fake import FakeUwsgi


def test_a_waiting_room_is_read_back_after_its_process_died(tmp_path: Path) -> None:
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path)
    for i in range(100):
        room.add(1000.0 + i, 1 if i % 2 else b"farm", f"body{i}".encode())
    assert [room.pop_due(1004.5).body for _ in range(5)] == [b"body0", b"body1", b"body2", b"body3", b"body4"]
    assert room.pop_due(1004.5) is None, "not due yet"
    # the process dies here (no close): its successor reads the file back
    successor = WaitingRoom(path)
    assert successor.load() == 95
    assert successor.next_due() == 1005.0
    taken = [successor.pop_due(2000.0) for _ in range(95)]
    assert [c.body for c in taken] == [f"body{i}".encode() for i in range(5, 100)]  # type: ignore[union-attr]
    assert [c.target for c in taken[:2]] == [1, b"farm"]  # type: ignore[union-attr]
    assert path.stat().st_size == 0, "an empty room leaves an empty file"
    assert WaitingRoom(path).load() == 0


def test_a_half_written_record_is_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path)
    room.add(5.0, 1, b"kept")
    room.add(6.0, 1, b"torn")
    room.close()
    data = path.read_bytes()
    path.write_bytes(data[:-2])  # the process died in the middle of the second write
    successor = WaitingRoom(path)
    assert successor.load() == 1
    assert successor.pop_due(10.0).body == b"kept"  # type: ignore[union-attr]


def test_the_dead_store_is_bounded_and_says_what_it_dropped(tmp_path: Path) -> None:
    lines: list[str] = []
    store = DeadStore(tmp_path, lines.append, limit=3)
    for i in range(5):
        store.add("app:task", f"app:task(*({i},), **{{}})", 3, 2, "TimeoutError: x", "Traceback...", 1, b"body")
    kept = store.tasks()
    assert [t.call for t in kept] == [f"app:task(*({i},), **{{}})" for i in (2, 3, 4)]
    assert len(lines) == 2 and all("dropped the oldest dead task record" in line for line in lines)
    assert "app:task(*(0,)" in lines[0]


def test_uwsgi_mules_dead_lists_shows_and_resends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = DeadStore(tmp_path, print)
    first = store.add("app:sync", "app:sync(*(1,), **{})", 4, 3, "ConnectionError: down", "Traceback: here", 1, b"b1")
    second = store.add("app:sync", "app:sync(*(2,), **{})", 4, 3, "ConnectionError: down", "", b"reports", b"b2")
    assert main(["dead", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert first.id in out and second.id in out and "2 dead task(s)" in out
    assert main(["dead", "--dir", str(tmp_path), "--show", first.id]) == 0
    assert "Traceback: here" in capsys.readouterr().out
    assert main(["dead", "--dir", str(tmp_path), "--resend", "nope"]) == 1
    assert len(list_dead(tmp_path)) == 2, "an unknown id sends nothing"
    assert main(["dead", "--dir", str(tmp_path), "--resend", second.id]) == 0
    assert "1 dead task(s) queued" in capsys.readouterr().out
    assert [t.id for t in list_dead(tmp_path)] == [first.id]
    [saved] = list(resend_dir(tmp_path).glob("*.backlog"))
    assert load(saved) == [(b"reports", b"b2")]


def test_a_crash_on_the_last_attempt_is_kept_as_dead_on_the_fake() -> None:
    fake_delivery_tasks.DONE.clear()
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"]) as fake:
        fake_delivery_tasks.always_crash(4)
        for _ in range(5):
            fake.run_pending()
    assert fake_delivery_tasks.DONE[4] == 3
    [dead] = fake.dead_letters
    assert (dead.path, dead.attempts, dead.error) == ("tests.fake_delivery_tasks:always_crash", 3, "the task killed mule 1")
    assert sum("DEAD task" in line for line in fake.log_lines) == 1
