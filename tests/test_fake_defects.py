"""Two defects of the fake that broke a user's test silently, reproduced."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from uwsgi_mules import mule_offload
from uwsgi_mules.fake import FakeUwsgi

SLOW_PROGRAM = "tests.slow_import_program:run"


@mule_offload(1)
def double(x: int) -> int:
    return 2 * x


def test_submit_as_first_call_reaches_a_signal_only_mule() -> None:
    """``submit()`` must install the mule hook like a plain call does."""
    with FakeUwsgi(mules=[None], caches=["name=uwsgi-mules-results,items=16"]) as fake:
        assert fake.mule_msg_hook is None  # a new fake: no call installed the hook yet
        handle = double.submit(21)
        fake.run_pending()
        assert not any("received a" in line for line in fake.log_lines), fake.log_lines
        assert handle.result(timeout=1) == 42


@pytest.fixture
def fresh_slow_program() -> Iterator[None]:
    sys.modules.pop("tests.slow_import_program", None)
    yield
    sys.modules.pop("tests.slow_import_program", None)


def test_threaded_fake_imports_mule_programs_before_the_threads(fresh_slow_program: None) -> None:
    """Two mule threads importing the same program at once: one of them found
    a half-initialised module and counted a task error."""
    with FakeUwsgi(mules=[SLOW_PROGRAM, SLOW_PROGRAM], threaded=True) as fake:
        assert double(1)
        fake.join(timeout=5)
    errors = [f"{where}: {exc!r}" for where, exc in fake.task_errors]
    respawns = [line for line in fake.log_lines if "respawning" in line]
    print(f"\ntask errors {errors}, respawns {respawns}")
    assert errors == []
    assert respawns == []
