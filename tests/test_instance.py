"""The instance's key and runtime directory (uwsgi_mules.instance)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from uwsgi_mules.instance import InsecureDirectory, load_or_create_key, master_start_time, secure_dir, sweep_stale


def test_key_is_created_once_and_shared(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path / "a")
    assert len(first) == 32
    assert load_or_create_key(tmp_path / "a") == first
    assert (tmp_path / "a" / "key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    assert load_or_create_key(tmp_path / "b") != first


def test_directories_others_can_write_are_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InsecureDirectory):
        secure_dir(shared)


def test_stale_runtime_dirs_are_swept_unless_they_hold_saved_offloads(tmp_path: Path) -> None:
    mine = tmp_path / f"{os.getpid()}-{master_start_time(os.getpid())}"
    gone = tmp_path / "999999999-12345"
    kept = tmp_path / "999999998-12345"
    for d in (mine, gone, kept):
        (d / "backlog").mkdir(parents=True)
    (kept / "backlog" / "x.backlog").write_bytes(b"")
    lines: list[str] = []
    sweep_stale(tmp_path, keep=tmp_path / "new", log=lines.append)
    assert mine.exists(), "a running instance's directory stays"
    assert not gone.exists()
    assert kept.exists() and "never replayed" in lines[0]
