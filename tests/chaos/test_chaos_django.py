"""Random schedules with Django's ``enqueue()`` (with and without
``run_after``) among the other work, on the fake with the example site's
layout (the Django 6 envs run it; elsewhere it is skipped with the reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django", reason="Django's enqueue() in the chaos suite needs Django (the Django 6 envs)")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() != "django.tasks":
    pytest.skip("Django's enqueue() in the chaos suite runs with Django 6's own task framework (envs django60, "
                "django61)", allow_module_level=True)

from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.layout.caches import RESULTS_CACHE  # noqa: E402

from .options import ChaosOptions  # noqa: E402
from .fake_driver import FAKE_FAULTS, FAKE_OPEN_DEFECTS, run_on_fake  # noqa: E402
from .runner import run_schedules, seeds  # noqa: E402
from .schedule import DJANGO_WEIGHTS, generate  # noqa: E402

#: schedules per run inside the default Django 6 envs
DEFAULT_SCHEDULES = 60


def django_fake(backlog: Path) -> FakeUwsgi:
    """A fake with the example site's layout and results caches."""
    from uwsgi_mules.contrib.django.ini import fake_options

    options: dict[str, Any] = fake_options(backlog_dir=backlog)
    options["caches"] = [*options["caches"], f"name={RESULTS_CACHE},items=2048,blocksize=4096"]  # submit()
    return FakeUwsgi(**options)


def test_random_schedules_with_django_enqueue(chaos_options: ChaosOptions, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    setup_django()
    run_schedules(request, seeds(chaos_options, DEFAULT_SCHEDULES),
                  lambda seed: generate(seed, FAKE_FAULTS, max_faults=3, open_defects=FAKE_OPEN_DEFECTS,
                                        weights=DJANGO_WEIGHTS),
                  lambda schedule, workdir: run_on_fake(schedule, workdir, make_fake=django_fake), tmp_path)
