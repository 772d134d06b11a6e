"""The durable pieces of retries and run-later without uWSGI: the waiting
room's file, the bounded dead store and ``uwsgi-mules dead``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import fake_delivery_tasks
from uwsgi_mules.cli import main
from uwsgi_mules.envelope import Signer
from uwsgi_mules.mule.delivery.backlog import SavedOffload, load
from uwsgi_mules.mule.delivery.dead import DeadStore, list_dead, resend_dir
from uwsgi_mules.mule.delivery.waiting import WaitingRoom
from uwsgi_mules.fake import FakeUwsgi

SIGNER = Signer(os.urandom(32))


def test_a_waiting_room_is_read_back_after_its_process_died(tmp_path: Path) -> None:
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path, signer=SIGNER)
    for i in range(100):
        room.add(1000.0 + i, 1 if i % 2 else b"farm", f"body{i}".encode(), f"app:task{i}")
    assert [room.pop_due(1004.5).body for _ in range(5)] == [b"body0", b"body1", b"body2", b"body3", b"body4"]
    assert room.pop_due(1004.5) is None, "not due yet"
    # the process dies here (no close): its successor reads the file back
    successor = WaitingRoom(path, signer=SIGNER)
    assert successor.load() == 95
    assert successor.next_due() == 1005.0
    taken = [successor.pop_due(2000.0) for _ in range(95)]
    assert [c.body for c in taken] == [f"body{i}".encode() for i in range(5, 100)]  # type: ignore[union-attr]
    assert [c.target for c in taken[:2]] == [1, b"farm"]  # type: ignore[union-attr]
    assert [c.path for c in taken[:2]] == ["app:task5", "app:task6"]  # type: ignore[union-attr]
    assert path.stat().st_size == 0, "an empty room leaves an empty file"
    assert WaitingRoom(path, signer=SIGNER).load() == 0


def test_a_half_written_record_is_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path, signer=SIGNER)
    room.add(5.0, 1, b"kept")
    room.add(6.0, 1, b"torn")
    room.close()
    data = path.read_bytes()
    path.write_bytes(data[:-2])  # the process died in the middle of the second write
    lines: list[str] = []
    successor = WaitingRoom(path, lines.append, SIGNER)
    assert successor.load() == 1
    assert successor.pop_due(10.0).body == b"kept"  # type: ignore[union-attr]
    assert len(lines) == 1 and "ends inside a record" in lines[0] and "ERROR" not in lines[0], lines


def test_a_waiting_file_is_read_back_only_as_far_as_the_instance_key_verifies(tmp_path: Path) -> None:
    """The bodies are pickles: a record written by anyone else, or changed,
    is never taken back (nor anything after it), with an error line."""
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path, signer=SIGNER)
    room.add(5.0, 1, b"first")
    room.add(6.0, 1, b"second")
    room.add(7.0, 1, b"third")
    room.close()
    data = path.read_bytes()
    path.write_bytes(data.replace(b"second", b"SECOND"))  # a body changed on disk
    lines: list[str] = []
    successor = WaitingRoom(path, lines.append, SIGNER)
    assert successor.load() == 1
    assert [c.body for c in successor.take_all()] == [b"first"]
    assert len(lines) == 1 and "ERROR" in lines[0] and "does not verify with the instance key" in lines[0], lines
    # another instance's key verifies nothing
    room = WaitingRoom(path, signer=SIGNER)
    room.add(5.0, 1, b"mine")
    room.close()
    lines.clear()
    stranger = WaitingRoom(path, lines.append, Signer(os.urandom(32)))
    assert stranger.load() == 0
    assert "does not verify" in lines[0], lines


def test_a_waiting_room_in_a_file_needs_a_signer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the instance's Signer"):
        WaitingRoom(tmp_path / "mule1.waiting")


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
    assert load(saved).entries == [SavedOffload(b"reports", b"b2", "app:sync")]


def test_a_dead_record_that_does_not_verify_is_never_listed_nor_resent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dead records hold pickles: they are signed with the data key of their
    directory; a changed, renamed or foreign record is named and left alone."""
    lines: list[str] = []
    store = DeadStore(tmp_path, lines.append)
    kept = store.add("app:sync", "app:sync(*(1,), **{})", 4, 3, "ConnectionError: down", "", 1, b"b1")
    forged = store.add("app:sync", "app:sync(*(2,), **{})", 4, 3, "ConnectionError: down", "", 1, b"b2")
    renamed = store.add("app:sync", "app:sync(*(3,), **{})", 4, 3, "ConnectionError: down", "", 1, b"b3")
    dead = tmp_path / "dead"
    forged_file = dead / f"{forged.id}.dead"
    forged_file.write_bytes(forged_file.read_bytes().replace(b'"retries": 3', b'"retries": 9'))
    (dead / f"{renamed.id}.dead").rename(dead / "99999999999999999999-1-1.dead")
    assert [t.id for t in store.tasks()] == [kept.id]
    assert len(lines) == 2 and all("is not read (never re-sent)" in line for line in lines), lines
    assert main(["dead", "--dir", str(tmp_path), "--resend-all"]) == 0
    out = capsys.readouterr()
    assert "1 dead task(s) queued" in out.out and out.err.count("is not read (never re-sent)") == 2, out
    [saved] = list(resend_dir(tmp_path).glob("*.backlog"))
    assert load(saved).entries == [SavedOffload(1, b"b1", "app:sync")]
    # a deleted data key: the records it signed verify no more
    later = store.add("app:sync", "app:sync(*(4,), **{})", 4, 3, "ConnectionError: down", "", 1, b"b4")
    assert [t.id for t in list_dead(tmp_path)] == [later.id]
    (dead / ".uwsgi-mules-data.key").unlink()
    assert list_dead(tmp_path) == []


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


# -- bounded, and read back record by record ---------------------------------------------------


def test_a_waiting_room_past_its_limit_refuses_calls_one_by_one(tmp_path: Path) -> None:
    refused: list[tuple[bytes, str]] = []
    room = WaitingRoom(tmp_path / "mule1.waiting", [].append, SIGNER, limit=3,
                       refused=lambda call, why: refused.append((call.body, why)))
    for i in range(5):
        room.add(100.0 + i, 1, f"body{i}".encode())
    assert len(room) == 3
    assert [body for body, _ in refused] == [b"body3", b"body4"]
    assert all("UWSGIMULES_WAITING_MAX" in why and "3" in why for _, why in refused), refused
    room.pop_due(100.0)
    room.add(200.0, 1, b"room again")
    assert len(room) == 3 and len(refused) == 2


@pytest.mark.parametrize("due", [float("nan"), float("inf"), float("-inf")])
def test_a_call_with_a_due_time_that_is_not_a_finite_number_is_refused(tmp_path: Path, due: float) -> None:
    refused: list[str] = []
    room = WaitingRoom(tmp_path / "mule1.waiting", [].append, SIGNER, refused=lambda call, why: refused.append(why))
    room.add(due, 1, b"never due")
    room.add(5.0, 1, b"due")
    assert len(room) == 1 and len(refused) == 1 and "finite" in refused[0], refused


def test_a_bad_record_is_rejected_alone_and_the_records_after_it_are_read(tmp_path: Path) -> None:
    """A signed record with a NaN due time (written by an older version, or by
    anyone holding the key) used to drop every record after it."""
    from uwsgi_mules.mule.delivery import waiting

    path = tmp_path / "mule1.waiting"
    nonce = os.urandom(16)
    calls = [waiting.WaitingCall(due, i, 1, f"body{i}".encode()) for i, due in
             enumerate([5.0, float("nan"), 7.0, float("inf"), 8.0])]
    records = [waiting.encode_record(SIGNER, nonce, i, 1, call) for i, call in enumerate(calls)]
    path.write_bytes(waiting.FILE_MAGIC + nonce + b"".join(records))
    path.chmod(0o600)
    lines: list[str] = []
    successor = WaitingRoom(path, lines.append, SIGNER)
    assert successor.load() == 3
    assert sorted(c.body for c in successor.take_all()) == [b"body0", b"body2", b"body4"]
    assert sum("rejected" in line for line in lines) == 1 and "2 record(s)" in " ".join(lines), lines


def test_the_waiting_limit_on_the_fake_sends_the_refused_calls_to_the_dead_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import retry_tasks

    monkeypatch.setenv("UWSGIMULES_WAITING_MAX", "3")
    retry_tasks.RUNS.clear()
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"]) as fake:
        for i in range(5):
            assert retry_tasks.later.offload_in(60, i) is True
        assert fake.run_pending() == 0
        dead = list(fake.dead_letters)
        lines = [line for line in fake.log_lines if "DEAD task" in line]
        fake.advance(61)
        ran = fake.run_pending()
    retry_tasks.RUNS.clear()
    print(f"\nsent 5, waiting limit 3: ran {ran}, dead {len(dead)}, lost {5 - ran - len(dead)}")
    assert ran == 3 and len(dead) == 2 and len(lines) == 2, lines
    assert all("UWSGIMULES_WAITING_MAX" in line for line in lines), lines


def test_a_dead_record_of_the_previous_format_is_still_listed_and_resent(tmp_path: Path) -> None:
    """Dead tasks outlive the instance: records written before an upgrade
    (``UWSGIMULES-DEAD-2``: magic, hex tag, newline, JSON) stay readable."""
    from uwsgi_mules.datakey import DataSigner, data_key
    from uwsgi_mules.mule.delivery import dead as dead_module

    store = DeadStore(tmp_path, print)
    task = store.add("app:sync", "app:sync(*(1,), **{})", 4, 3, "ConnectionError: down", "", 1, b"b1")
    path = tmp_path / "dead" / f"{task.id}.dead"
    text = task.to_json().encode()
    tag = DataSigner(data_key(path.parent)).tag(dead_module.DOMAIN, task.id.encode(), b"\x00", text)
    path.write_bytes(dead_module.OLD_MAGIC + tag.hex().encode() + b"\n" + text)
    assert [t.id for t in list_dead(tmp_path)] == [task.id]
    changed = text.replace(b'"retries": 3', b'"retries": 8')
    path.write_bytes(dead_module.OLD_MAGIC + tag.hex().encode() + b"\n" + changed)
    assert list_dead(tmp_path) == [], "and verified as before"


def test_reading_back_costs_the_file_once_plus_each_live_call(tmp_path: Path) -> None:
    """One pass over the bytes; only live calls are kept (a million records
    took 1.1 GB to read back before: the file, a copy per record, the rewrite
    joined in memory)."""
    import tracemalloc

    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path, signer=SIGNER)
    for i in range(6_000):
        room.add(1e9 + i, 1, b"b" * 100, "app.tasks:later")
    for _ in range(1_000):
        room.pop_due(1e9 + 1_000)
    room.close()
    size = path.stat().st_size
    tracemalloc.start()
    try:
        successor = WaitingRoom(path, signer=SIGNER)
        assert successor.load() == 5_000
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nfile {size} bytes, 5000 live calls: peak {peak} bytes ({(peak - size) / 5_000:.0f} per call beyond "
          f"the file), kept {kept / 5_000:.0f} per call")
    assert peak < size + 800 * 5_000
    assert kept < 400 * 5_000
