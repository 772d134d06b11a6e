"""A full runtime filesystem never crashes a mule nor tears a record.

``$XDG_RUNTIME_DIR`` is usually a small tmpfs. Here ``os.write`` fails with
``ENOSPC`` (or writes only part of what it was given, then fails) for the
files of the test's directory, as a full filesystem does: the waiting room
keeps its calls in memory with ONE error line, never raises, never leaves a
torn record or a temporary file, and writes its file again once it can;
backlog and dead-task files are all or nothing."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from uwsgi_mules.envelope import Signer
from uwsgi_mules.mule.delivery.backlog import SavedOffload, save
from uwsgi_mules.mule.delivery.dead import DeadStore
from uwsgi_mules.mule.delivery.waiting import WaitingRoom

SIGNER = Signer(os.urandom(32))


class FullDisk:
    """``os.write`` on files under ``root`` fails while :attr:`full`; with
    :attr:`short`, a write first stores half of its bytes (a short write),
    and the next one fails."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = str(root)
        self.full = False
        self.short = False
        self.failed = 0
        self._write = os.write
        monkeypatch.setattr(os, "write", self.write)

    def _ours(self, fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(self.root)
        except OSError:
            return False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if not self.full or not self._ours(fd):
            return self._write(fd, data)
        self.failed += 1
        if self.short and len(data) > 1:
            self.short = False  # the next write finds the filesystem full
            return self._write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FullDisk]:
    yield FullDisk(tmp_path, monkeypatch)


def leftovers(directory: Path, keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def test_a_waiting_room_that_cannot_write_keeps_its_calls_and_says_it_once(tmp_path: Path, disk: FullDisk) -> None:
    path = tmp_path / "mule1.waiting"
    lines: list[str] = []
    room = WaitingRoom(path, lines.append, SIGNER)
    for i in range(3):
        room.add(100.0 + i, 1, f"on-disk{i}".encode())
    disk.full = True
    for i in range(3, 8):
        room.add(100.0 + i, 1, f"in-memory{i}".encode())  # never raises into the dispatcher
    assert disk.failed >= 1 and len(room) == 8
    errors = [line for line in lines if "ERROR" in line]
    print(f"\n{disk.failed} failed writes, {len(errors)} error line(s): {errors}")
    assert len(errors) == 1 and "mule1.waiting" in errors[0] and "memory" in errors[0], lines
    assert room.pop_due(100.5) is not None, "taking a call writes a record too: no raise"
    disk.full = False
    room.retry_after = 0.0  # the next write tries the whole file again at once
    room.add(200.0, 1, b"after")
    successor = WaitingRoom(path, [].append, SIGNER)
    assert successor.load() == 8, "once it can write, the file holds every waiting call again"
    assert sorted(c.body for c in successor.take_all())[0] == b"after"
    assert any("written again" in line for line in lines), lines


def test_a_short_write_never_leaves_a_torn_record(tmp_path: Path, disk: FullDisk) -> None:
    path = tmp_path / "mule1.waiting"
    lines: list[str] = []
    room = WaitingRoom(path, lines.append, SIGNER)
    room.add(5.0, 1, b"kept")
    size = path.stat().st_size
    disk.full = disk.short = True
    room.add(6.0, 1, b"x" * 4000)  # half of it reaches the file, then the filesystem is full
    assert len(room) == 2 and path.stat().st_size == size, "the torn half is cut off again"
    disk.full = False
    read_back: list[str] = []
    successor = WaitingRoom(path, read_back.append, SIGNER)
    assert successor.load() == 1 and read_back == [], read_back


def test_reading_back_on_a_full_filesystem_keeps_the_mule_and_the_file(tmp_path: Path, disk: FullDisk) -> None:
    """load() rewrites the file at start: on a full filesystem the mule keeps
    running (nothing raises), the old file stays whole, no temporary file is left."""
    path = tmp_path / "mule1.waiting"
    room = WaitingRoom(path, [].append, SIGNER)
    for i in range(10):
        room.add(100.0 + i, 1, f"body{i}".encode())
    room.close()
    disk.full = True
    lines: list[str] = []
    respawned = WaitingRoom(path, lines.append, SIGNER)
    assert respawned.load() == 10
    assert leftovers(tmp_path, path.name) == [], "no mule1.waiting.tmp nor any other temporary file"
    assert sum("ERROR" in line for line in lines) == 1, lines
    respawned.add(300.0, 1, b"more")  # still no raise, and no second error line
    assert sum("ERROR" in line for line in lines) == 1, lines
    disk.full = False
    assert WaitingRoom(path, [].append, SIGNER).load() == 10, "the file of the previous process is intact"


def test_a_backlog_file_on_a_full_filesystem_is_all_or_nothing(tmp_path: Path, disk: FullDisk) -> None:
    directory = tmp_path / "backlog"
    save(directory, [SavedOffload(1, b"first")])  # creates the directory and its data key
    before = sorted(p.name for p in directory.iterdir())
    disk.full = disk.short = True
    with pytest.raises(OSError):
        save(directory, [SavedOffload(1, b"x" * 10_000)])
    assert disk.failed >= 1, "the write went through os.write (the short write is seen)"
    assert sorted(p.name for p in directory.iterdir()) == before, "no torn backlog file, no temporary file"


def test_a_dead_record_on_a_full_filesystem_is_all_or_nothing(tmp_path: Path, disk: FullDisk) -> None:
    store = DeadStore(tmp_path, [].append)
    store.add("app:t", "app:t()", 1, 0, "E: x", "", 1, b"body")
    before = sorted(p.name for p in (tmp_path / "dead").iterdir())
    disk.full = disk.short = True
    with pytest.raises(OSError):
        store.add("app:t", "app:t()", 1, 0, "E: x", "", 1, b"y" * 10_000)
    assert disk.failed >= 1
    assert sorted(p.name for p in (tmp_path / "dead").iterdir()) == before


def test_an_inflight_record_has_no_hole_to_fault_on(tmp_path: Path) -> None:
    """Writing through a mapping into a hole of a full tmpfs is SIGBUS."""
    from uwsgi_mules.mule.delivery.inflight import HEADER_SIZE, InflightRecord

    path = tmp_path / "mule1.inflight"
    record = InflightRecord(65536, path)
    try:
        info = path.stat()
        assert info.st_size == HEADER_SIZE + 65536
        assert info.st_blocks * 512 >= info.st_size, "every block allocated"
    finally:
        record.close()
