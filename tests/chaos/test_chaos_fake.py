"""Random schedules on the fake: many of them, on its virtual clock, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from .options import ChaosOptions
from .fake_driver import FAKE_FAULTS, FAKE_OPEN_DEFECTS, run_on_fake
from .runner import run_schedules, seeds
from .schedule import generate

#: schedules per run inside the default envs (a few seconds)
DEFAULT_SCHEDULES = 60


def test_random_schedules_on_the_fake(chaos_options: ChaosOptions, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    run_schedules(request, seeds(chaos_options, DEFAULT_SCHEDULES),
                  lambda seed: generate(seed, FAKE_FAULTS, max_faults=3, open_defects=FAKE_OPEN_DEFECTS), run_on_fake, tmp_path)
