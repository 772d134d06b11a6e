"""Signal, timer, lock, spooler and decorator scenarios on real uWSGI
(the ``uwsgi`` binary or pyuwsgi, whichever this environment has)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi

from .signal_apps import scenarios
from .signal_apps.harness import SignalHarness, make

pytestmark = pytest.mark.real


@pytest.fixture
def real_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SignalHarness]:
    require_real_uwsgi()
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("MULES_TEST_DIR", str(workdir))
    harness = make("real", workdir)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.__name__)
def test_scenario_on_real_uwsgi(real_harness: SignalHarness, scenario: Callable[[SignalHarness], None]) -> None:
    try:
        scenario(real_harness)
    except Exception:
        print(real_harness.log_text()[-6000:])  # type: ignore[attr-defined]
        raise
