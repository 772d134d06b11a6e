"""What the command line asked the chaos suite for (see conftest.py for the options)."""

from __future__ import annotations

import os

import pytest

#: the first seed of the default envs' schedules
DEFAULT_BASE_SEED = 1


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
