"""Options of the chaos suite.

``--chaos-seed N`` runs exactly the schedule of seed N (what a failure
prints to reproduce it); ``--chaos-schedules N`` how many random schedules
each test runs; ``--chaos-minutes M`` keeps generating schedules for M
minutes instead (``tox -e chaos -- --chaos-minutes 5``), from a new base
seed each run (``CHAOS_BASE_SEED`` fixes it). Without these the default
envs run the same schedules every time (seeds from 1).
"""

from __future__ import annotations

import pytest

from .options import ChaosOptions


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "random schedules of work and faults (tests/chaos)")
    group.addoption("--chaos-seed", type=int, default=None, help="run only the schedule of this seed")
    group.addoption("--chaos-schedules", type=int, default=None,
                    help="random schedules per test (default: 60 on the fake, 2 per real uWSGI test)")
    group.addoption("--chaos-minutes", type=float, default=0.0,
                    help="keep running random schedules for this many minutes per test")


@pytest.fixture
def chaos_options(request: pytest.FixtureRequest) -> ChaosOptions:
    return ChaosOptions(request.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per chaos test: how many schedules and calls it ran, how many failed."""
    lines = [value for outcome in ("passed", "failed", "xfailed", "xpassed")
             for report in terminalreporter.stats.get(outcome, [])
             for name, value in getattr(report, "user_properties", ()) if name == "chaos"]
    if lines:
        terminalreporter.section("chaos schedules")
        for line in sorted(set(lines)):
            terminalreporter.write_line(line)
