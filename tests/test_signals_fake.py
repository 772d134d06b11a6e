"""The signal/timer/lock/spooler contract scenarios on the fake, plus the
fake's own guarantees (virtual clock, cron -N, misuse errors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.real.signal_apps import scenarios
from tests.real.signal_apps.harness import SignalHarness, make


@pytest.fixture
def fake_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SignalHarness]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("MULES_TEST_DIR", str(workdir))
    harness = make("fake", workdir)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.__name__)
def test_scenario_on_the_fake(fake_harness: SignalHarness, scenario: Callable[[SignalHarness], None]) -> None:
    scenario(fake_harness)
