"""A Django task's result only moves forward: READY -> RUNNING ->
SUCCESSFUL / FAILED (READY again only when a retry follows), each change a
new signed version; an older record written back (by anyone with access to
the results cache) never replaces a newer one, and is refused by a reader
that has seen the newer one."""

from __future__ import annotations

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from tests.django.app_tasks import tasks  # noqa: E402
from uwsgi_mules.contrib.django.tasks import compat  # noqa: E402
from uwsgi_mules.contrib.django.tasks.records import StaleResult  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402

SUCCESSFUL = compat.TaskResultStatus.SUCCESSFUL
FAILED = compat.TaskResultStatus.FAILED
RESULTS_CACHE = "uwsgi-mules-tasks"


def test_writing_the_tasks_own_earlier_ready_record_back_does_not_roll_it_back(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.add.enqueue(2, 3)
    ready = uwsgi_fake.cache_get(r.id, RESULTS_CACHE)  # genuinely signed, READY
    uwsgi_fake.run_pending()
    assert tasks.add.get_result(r.id).status == SUCCESSFUL
    assert uwsgi_fake.cache_update(r.id, ready, 0, RESULTS_CACHE)  # anyone with access to the cache
    result = tasks.add.get_result(r.id)
    assert result.status == SUCCESSFUL and result.return_value == 5
    assert any("older than" in line and r.id in line for line in uwsgi_fake.log_lines)


def test_a_failed_result_is_not_rolled_back_either(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.fail.enqueue("x")
    ready = uwsgi_fake.cache_get(r.id, RESULTS_CACHE)
    uwsgi_fake.run_pending()
    uwsgi_fake.cache_update(r.id, ready, 0, RESULTS_CACHE)
    assert tasks.fail.get_result(r.id).status == FAILED


def test_the_store_never_replaces_a_newer_version(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.add.enqueue(2, 3)
    store = compat.task_backends["default"].result_store(uwsgi_fake)
    stale = store.read(r.id)  # READY, version 1
    uwsgi_fake.run_pending()  # RUNNING (2), SUCCESSFUL (3)
    stale.start("mule9:1", uwsgi_fake.wall_time())  # version 2: older than the cache's
    with pytest.raises(StaleResult, match="holds version 3"):
        store.write(stale)
    assert tasks.add.get_result(r.id).status == SUCCESSFUL
    assert any("was not stored" in line and r.id in line for line in uwsgi_fake.log_lines)
