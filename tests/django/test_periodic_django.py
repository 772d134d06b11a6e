"""``UWSGI_MULES["PERIODIC"]``: Django ``@task`` functions and offloaded
functions on a schedule, on the fake's virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from tests.django import periodic_tasks  # noqa: E402
from uwsgi_mules.contrib.django.ini import fake_options  # noqa: E402
from uwsgi_mules.contrib.django.periodic import declare_from_settings  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.periodic import forget_entries  # noqa: E402

REPORT = "tests.django.periodic_tasks.report"
PURGE = "tests.django.periodic_tasks.purge"


@pytest.fixture
def scheduled() -> Iterator[None]:
    periodic_tasks.RUNS.clear()
    yield
    forget_entries([REPORT, "tests.django.periodic_tasks:purge"])
    periodic_tasks.RUNS.clear()


def test_a_task_and_an_offload_run_on_their_schedules(scheduled: None) -> None:
    entries = declare_from_settings({
        REPORT: {"CRON": "0 * * * *", "TZ": "Europe/Paris", "PASS_DUE": True},
        PURGE: {"EVERY": 1800, "CATCH_UP": "all"},
    })
    assert [e.name for e in entries] == [REPORT, "tests.django.periodic_tasks:purge"]
    with FakeUwsgi(**fake_options()) as fake:
        fake.clock.set_datetime(datetime(2026, 6, 1, 10, 10, tzinfo=timezone.utc))
        fake.advance(3 * 3600)
        fake.run_pending()
    reports = [due for name, due in periodic_tasks.RUNS if name == "report"]
    assert reports == ["2026-06-01T13:00:00+02:00", "2026-06-01T14:00:00+02:00", "2026-06-01T15:00:00+02:00"]
    assert sum(name == "purge" for name, _ in periodic_tasks.RUNS) == 6


def test_periodic_stacks_on_a_django_task(scheduled: None) -> None:
    from uwsgi_mules.periodic import periodic

    assert periodic(every=timedelta(minutes=20), catch_up="all")(periodic_tasks.report) is periodic_tasks.report
    with FakeUwsgi(**fake_options()) as fake:
        fake.clock.set_datetime(datetime(2026, 6, 1, 10, 10, tzinfo=timezone.utc))
        fake.advance(3600)
        fake.run_pending()
    assert [name for name, _ in periodic_tasks.RUNS] == ["report"] * 3
    with pytest.raises(ValueError, match="jitter applies to offloaded functions"):
        periodic(every=timedelta(minutes=20), jitter=5)(periodic_tasks.add_one)


@pytest.mark.parametrize(("spec", "reason"), [
    ({REPORT: {"CRON": "0 25 * * *"}}, "Bad hour"),
    ({REPORT: {"EVERY": 60, "TZ": "Nowhere/Else"}}, "not a known IANA timezone"),
    ({REPORT: {"EVERY": 60, "WHEN": 1}}, "unknown keys"),
    ({REPORT: {"EVERY": 60, "JITTER": 5}}, "jitter applies to offloaded functions"),
    ({"tests.django.periodic_tasks.plain": {"EVERY": 60}}, "neither a @task nor an offloaded function"),
    ({"tests.django.no_such_module.f": {"EVERY": 60}}, "cannot import"),
])
def test_bad_entries_raise_with_the_path_and_the_reason(scheduled: None, spec: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ImproperlyConfigured, match=reason) as raised:
        declare_from_settings(spec)
    assert isinstance(raised.value, ValueError)
