"""``uwsgi-mules dead`` as a new user and a hostile local user meet it: it
finds the instance where the instance is ($XDG_RUNTIME_DIR), prints errors
as one line, escapes what tasks wrote, and two re-sends racing each other
send every record exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from uwsgi_mules.cli import main
from uwsgi_mules.mule.delivery.backlog import load
from uwsgi_mules.mule.delivery.dead import DeadStore, list_dead, resend_dir

ENVS = ("UWSGIMULES_BACKLOG_DIR", "UWSGIMULES_RUNTIME_DIR", "XDG_RUNTIME_DIR")


@pytest.fixture(autouse=True)
def no_instance_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))


def add(base: Path, n: int, error: str = "TimeoutError: x") -> list[str]:
    store = DeadStore(base, print, limit=100_000)
    return [store.add("app:task", f"app:task(*({i},), **{{}})", 3, 2, error, "Traceback: here", 1,
                      f"body{i}".encode()).id for i in range(n)]


def test_the_default_search_honours_xdg_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    instance = tmp_path / "xdg" / "uwsgi-mules" / "123-456"
    instance.mkdir(parents=True, mode=0o700)
    [task_id] = add(instance, 1)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert main(["dead"]) == 0
    out = capsys.readouterr().out
    assert task_id in out and "1 dead task(s)" in out


def test_an_insecure_directory_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(tmp_path, 1)
    (tmp_path / "dead").chmod(0o777)
    try:
        assert main(["dead", "--dir", str(tmp_path)]) == 2
    finally:
        (tmp_path / "dead").chmod(0o700)
    err = capsys.readouterr().err
    print(err)
    assert err.count("\n") == 1 and err.startswith("uwsgi-mules dead: ") and "Traceback" not in err


def test_what_tasks_wrote_is_printed_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forged = "00000000000000000001-1-1  1970-01-01 00:00:00  1 attempt(s)  app:forged()  -- nothing"
    [task_id] = add(tmp_path, 1, error=f"ValueError: \x1b[2J\x1b[H\r\n{forged}\x07")
    assert main(["dead", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "\\n" in out
    assert not any(line.strip().startswith("00000000000000000001") for line in out.splitlines()), "no forged line"
    assert main(["dead", "--dir", str(tmp_path), "--show", task_id]) == 0
    assert "\x1b" not in capsys.readouterr().out


def resend_all(base: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENVS}
    return subprocess.Popen([sys.executable, "-m", "uwsgi_mules.cli", "dead", "--dir", str(base), "--resend-all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("round_", range(3))
def test_two_racing_resend_all_send_each_record_once(tmp_path: Path, round_: int) -> None:
    add(tmp_path, 200)
    first, second = resend_all(tmp_path), resend_all(tmp_path)
    outputs = [proc.communicate(timeout=120) for proc in (first, second)]
    bodies = [entry.body for path in sorted(resend_dir(tmp_path).glob("*.backlog"))
              for entry in load(path).entries]
    resent_lines = [line for out, _ in outputs for line in out.splitlines() if line.startswith("re-sent ")]
    duplicated = len(bodies) - len(set(bodies))
    print(f"\nround {round_}: 200 dead, {len(bodies)} re-send entries, {duplicated} duplicated, "
          f"{200 - len(set(bodies))} lost, re-sent lines {len(resent_lines)}")
    assert [proc.returncode for proc in (first, second)] == [0, 0], outputs
    assert sorted(bodies) == sorted(f"body{i}".encode() for i in range(200))
    assert len(resent_lines) == 200
    assert not any("not read" in err for _, err in outputs), [err for _, err in outputs]
    assert list_dead(tmp_path) == []
