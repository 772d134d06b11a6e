"""Runtime files: stale instance directories that still hold something of
value are kept, and a key file that is not a regular file never hangs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from uwsgi_mules.datakey import KEY_NAME, data_key
from uwsgi_mules.instance import InsecureDirectory, load_or_create_key, sweep_stale


def test_a_stale_runtime_dir_that_holds_dead_tasks_is_kept(tmp_path: Path) -> None:
    gone = tmp_path / "999999999-12345"
    kept = tmp_path / "999999998-12345"
    (gone / "dead").mkdir(parents=True)  # an empty dead/ holds nothing: swept
    (kept / "dead").mkdir(parents=True)
    (kept / "dead" / "00000000000000000001-1-1.dead").write_bytes(b"record")
    claimed = tmp_path / "999999997-12345" / "dead" / "claiming-999999999"  # a re-send died holding it
    claimed.mkdir(parents=True)
    (claimed / "00000000000000000002-1-1.dead").write_bytes(b"record")
    lines: list[str] = []
    sweep_stale(tmp_path, keep=tmp_path / "new", log=lines.append)
    assert not gone.exists()
    assert kept.exists(), "its dead tasks are never deleted silently"
    assert claimed.exists(), "nor those a re-send had claimed"
    assert len(lines) == 2 and all("1 dead task" in line and "uwsgi-mules dead" in line for line in lines), lines


def opened_in_time(target, *args: object) -> BaseException | None:  # type: ignore[no-untyped-def]
    """What ``target(*args)`` raised, within 5 s of CPU-independent wall time;
    fails the test if it blocks (and unblocks it by opening the FIFO's other end)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            target(*args)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    return outcome[0] if outcome else TimeoutError("blocked")


def unblock(fifo: Path) -> None:
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("which", ["data key", "instance key"])
def test_a_key_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path, which: str) -> None:
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    fifo = directory / (KEY_NAME if which == "data key" else "key")
    os.mkfifo(fifo, 0o600)
    try:
        if which == "data key":
            error = opened_in_time(data_key, directory)
        else:
            error = opened_in_time(load_or_create_key, directory)
    finally:
        unblock(fifo)
    assert isinstance(error, InsecureDirectory), error
    assert "not a regular file" in str(error), error


def test_a_waiting_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    from uwsgi_mules.envelope import Signer
    from uwsgi_mules.mule.delivery.waiting import WaitingRoom

    fifo = tmp_path / "mule1.waiting"
    os.mkfifo(fifo, 0o600)
    lines: list[str] = []
    room = WaitingRoom(fifo, lines.append, Signer(os.urandom(32)))
    try:
        error = opened_in_time(room.add, 5.0, 1, b"kept in memory")
    finally:
        unblock(fifo)
    assert error is None and len(room) == 1
    assert len(lines) == 1 and "ERROR" in lines[0] and "cannot be written" in lines[0], lines
