"""Options of the chaos suite.

``--chaos-seed N`` runs exactly the schedule of seed N (what a failure
prints to reproduce it); ``--chaos-schedules N`` how many random schedules
each test runs; ``--chaos-minutes M`` keeps generating schedules for M
minutes instead (``tox -e chaos -- --chaos-minutes 5``), from a new base
seed each run (``CHAOS_BASE_SEED`` fixes it). Without these the default
envs run the same schedules every time (seeds from 1).
"""

from __future__ import annotations

import os

import pytest

DEFAULT_BASE_SEED = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "random schedules of work and faults (tests/chaos)")
    group.addoption("--chaos-seed", type=int, default=None, help="run only the schedule of this seed")
    group.addoption("--chaos-schedules", type=int, default=None,
                    help="random schedules per test (default: 200 on the fake, 2 per real uWSGI test)")
    group.addoption("--chaos-minutes", type=float, default=0.0,
                    help="keep running random schedules for this many minutes per test")


class ChaosOptions:
    """What the command line asked for."""

    def __init__(self, config: pytest.Config) -> None:
        # the defaults also when pytest started from a directory above this one
        # (then this conftest loads after the command line was parsed)
        self.seed: int | None = config.getoption("--chaos-seed", None)
        self.schedules: int | None = config.getoption("--chaos-schedules", None)
        self.minutes: float = config.getoption("--chaos-minutes", 0.0) or 0.0
        #: the first seed: CHAOS_BASE_SEED, else a new one per run under --chaos-minutes,
        #: else 1 (the default envs run the same schedules every time: no surprise in CI)
        fixed = os.environ.get("CHAOS_BASE_SEED")
        if fixed:
            self.base_seed = int(fixed)
        elif self.minutes:
            self.base_seed = int.from_bytes(os.urandom(3), "big")
        else:
            self.base_seed = DEFAULT_BASE_SEED


@pytest.fixture
def chaos_options(request: pytest.FixtureRequest) -> ChaosOptions:
    return ChaosOptions(request.config)
