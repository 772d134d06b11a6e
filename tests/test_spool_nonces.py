"""The used nonces of signed spool tasks (uwsgi_mules.decorators.spool_nonces):
the same spool file may run again, a copy may not, nor a finished task;
records outlive the process, and old ones are pruned with a bound."""

from __future__ import annotations

import os
import time
from pathlib import Path

from uwsgi_mules.decorators.spool_nonces import REPLAY_WINDOW, NonceStore, new_nonce

NOW = 2_000_000_000.0


def test_the_same_file_runs_again_a_copy_or_a_finished_task_does_not(tmp_path: Path) -> None:
    store = NonceStore(tmp_path / "nonces")
    nonce = new_nonce()
    assert store.admit(nonce, "uwsgi_spoolfile_on_a", NOW, NOW) == ""
    assert store.admit(nonce, "uwsgi_spoolfile_on_a", NOW, NOW + 1) == "", "SPOOL_RETRY / @spoolforever"
    assert "another spool file" in store.admit(nonce, "uwsgi_spoolfile_on_b", NOW, NOW + 2)
    restarted = NonceStore(tmp_path / "nonces")  # a new spooler process (a restart) reads the same records
    assert "another spool file" in restarted.admit(nonce, "uwsgi_spoolfile_on_b", NOW, NOW + 3)
    restarted.finished(nonce)
    assert "already ran" in store.admit(nonce, "uwsgi_spoolfile_on_a", NOW, NOW + 4)
    assert (tmp_path / "nonces").stat().st_mode & 0o777 == 0o700
    assert sorted(os.listdir(tmp_path / "nonces")) == [nonce], "no temporary file left"


def test_a_task_older_than_the_window_is_refused_and_old_records_are_pruned(tmp_path: Path) -> None:
    store = NonceStore(tmp_path / "nonces")
    old = new_nonce()
    assert store.admit(old, "f1", NOW, NOW) == ""
    past = time.time() - REPLAY_WINDOW - 10
    os.utime(tmp_path / "nonces" / old, (past, past))
    assert "days ago" in store.admit(new_nonce(), "f2", NOW - REPLAY_WINDOW - 1, NOW)
    assert store.admit(new_nonce(), "f3", NOW, NOW + 7200) == ""  # an hour later: the store prunes
    assert not (tmp_path / "nonces" / old).exists()
    assert len(os.listdir(tmp_path / "nonces")) == 1


def test_a_malformed_nonce_is_refused_and_memory_stores_work_alike() -> None:
    store = NonceStore(None)
    assert "not a nonce" in store.admit("../../etc/passwd", "f", NOW, NOW)
    nonce = new_nonce()
    assert store.admit(nonce, "f", NOW, NOW) == "" and store.admit(nonce, "f", NOW, NOW) == ""
    assert store.admit(nonce, "g", NOW, NOW) != ""
    store.finished(nonce)
    assert "already ran" in store.admit(nonce, "f", NOW, NOW)
