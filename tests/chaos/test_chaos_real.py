"""Random schedules on real uWSGI: the binary (env uwsgi), the binary with the
C plugin (env plugin) and pyuwsgi (env pyuwsgi). A few short schedules in
the default envs; ``tox -e chaos -- --chaos-minutes M`` runs more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import plugin_path

from .options import ChaosOptions
from .real_driver import REAL_FAULTS, run_on_real
from .runner import run_schedules, seeds
from .schedule import NO_PLUGIN_LIMITS, generate

pytestmark = [pytest.mark.real, pytest.mark.plugin]  # the plugin is loaded in the tox env plugin

#: schedules per run inside the default envs (about 6 s each)
DEFAULT_SCHEDULES = 2


def test_random_schedules_on_real_uwsgi(chaos_options: ChaosOptions, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    flavour = require_real_uwsgi()
    # each env runs its own schedules: binary seeds 1-2, binary + plugin 3-4, pyuwsgi 5-6
    offset = 2 * ((2 if flavour == "pyuwsgi" else 0) + (1 if plugin_path() else 0))
    run_schedules(request, seeds(chaos_options, DEFAULT_SCHEDULES, offset),
                  lambda seed: generate(seed, REAL_FAULTS, duration=3.0, batches=3, batch_size=10, min_faults=1,
                                         persistent_fails=(0, 2, 4),
                                         open_defects=frozenset() if plugin_path() else NO_PLUGIN_LIMITS),
                  run_on_real, tmp_path)
