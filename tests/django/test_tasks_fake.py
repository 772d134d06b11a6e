"""``MulesBackend`` (Django's task framework on mules) under the fake backend
and in ``LOCAL_MODE = "inline"``: the same scenarios as on real uWSGI
(tests/django/test_tasks_real.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import setup_django, tasks_framework  # noqa: E402

if tasks_framework() is None:
    pytest.skip("Django's task framework is not installed (Django >= 6 or django-tasks)", allow_module_level=True)

setup_django()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import override_settings  # noqa: E402

from tests.django.app_tasks import tasks  # noqa: E402
from tests.django.site_setup import TEST_TASKS  # noqa: E402
from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.contrib.django import local  # noqa: E402
from uwsgi_mules.contrib.django.ini import build_section, fake_options  # noqa: E402
from uwsgi_mules.contrib.django.tasks import compat  # noqa: E402
from uwsgi_mules.contrib.django.tasks.options import parse_options  # noqa: E402
from uwsgi_mules.envelope import TAG_SIZE  # noqa: E402
from uwsgi_mules.errors import UnknownFarm  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402

SUCCESSFUL = compat.TaskResultStatus.SUCCESSFUL
FAILED = compat.TaskResultStatus.FAILED
READY = compat.TaskResultStatus.READY
RESULTS_CACHE = "uwsgi-mules-tasks"


@pytest.fixture(autouse=True)
def _runs() -> None:
    tasks.RUNS.clear()


def _settle(fake: FakeUwsgi) -> int:
    return fake.run_pending()


# -- the contract on the fake ---------------------------------------------------------------


def test_the_issue_example_runs_on_the_fake() -> None:
    with FakeUwsgi(**fake_options()) as fake:
        r = tasks.add.enqueue(2, 3)
        assert r.status == READY and r.enqueued_at is not None and len(r.id) == 32
        assert tasks.add.get_result(r.id).status == READY  # stored before the message was sent
        assert fake.pending() == 1
        fake.run_pending()
        result = tasks.add.get_result(r.id)
    assert result.status == SUCCESSFUL
    assert result.return_value == 5
    assert result.task.func is tasks.add.func
    assert result.args == [2, 3] and result.kwargs == {}
    assert len(result.worker_ids) == 1 and result.worker_ids[0].startswith("mule")
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert result.errors == []


def test_a_fake_without_the_results_cache_says_what_to_do() -> None:
    from uwsgi_mules.contrib.django.tasks.records import ResultsCacheMissing

    with FakeUwsgi(topology=fake_options()["topology"]) as fake:
        with pytest.raises(ResultsCacheMissing, match="fake_options"):
            tasks.add.enqueue(1, 2)
        assert fake.pending() == 0


def test_refresh_reads_the_result_again_and_again(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.add.enqueue(4, 5)
    r.refresh()
    assert r.status == READY
    uwsgi_fake.run_pending()
    for _ in range(3):
        r.refresh()
        assert r.status == SUCCESSFUL and r.return_value == 9


def test_a_failure_has_the_exception_path_and_the_traceback(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.fail.enqueue("boom")
    uwsgi_fake.run_pending()
    result = tasks.fail.get_result(r.id)
    assert result.status == FAILED
    [error] = result.errors
    assert error.exception_class_path == "tests.django.app_tasks.tasks.TaskBroke"
    assert error.exception_class is tasks.TaskBroke
    assert "raise TaskBroke(message)" in error.traceback and "TaskBroke: boom" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018
    assert result.finished_at is not None and len(result.worker_ids) == 1
    # the dispatcher logged and counted it like any failed offload
    assert [type(exc) for _, exc in uwsgi_fake.task_errors] == [tasks.TaskBroke]


def test_queues_go_to_their_targets(uwsgi_fake: FakeUwsgi) -> None:
    on_farm = tasks.where.enqueue("farm")  # queue "notes": the farm "notes" (mules 1, 2)
    assert len(uwsgi_fake.queue("notes")) == 1
    on_mule2 = tasks.where.using(queue_name="mule2").enqueue("mule")
    assert len(uwsgi_fake.queue(2)) == 1
    mapped = tasks.where.using(queue_name="reports").enqueue("mapped")  # OPTIONS["TARGETS"]: farm "notes"
    assert len(uwsgi_fake.queue("notes")) == 2
    shared = tasks.add.enqueue(1, 1)  # "default": the shared queue
    assert len(uwsgi_fake.queue(0)) == 1
    assert uwsgi_fake.run_pending() == 4
    assert tasks.where.get_result(on_farm.id).return_value["mule"] in (1, 2)
    assert tasks.where.get_result(on_mule2.id).return_value["mule"] == 2
    assert tasks.where.get_result(mapped.id).return_value["mule"] in (1, 2)
    assert tasks.where.get_result(mapped.id).task.queue_name == "reports"
    assert tasks.add.get_result(shared.id).status == SUCCESSFUL


def test_async_tasks_run_in_the_mule(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.async_add.enqueue(20, 22)
    uwsgi_fake.run_pending()
    assert tasks.async_add.get_result(r.id).return_value == 42
    assert tasks.RUNS == [("async_add", (20, 22))]


def test_aenqueue_and_aget_result(uwsgi_fake: FakeUwsgi) -> None:
    import asyncio

    r = asyncio.run(tasks.add.aenqueue(6, 7))
    uwsgi_fake.run_pending()
    assert asyncio.run(tasks.add.aget_result(r.id)).return_value == 13


def test_context_has_the_attempt_and_the_result(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.with_context.enqueue("v")
    uwsgi_fake.run_pending()
    result = tasks.with_context.get_result(r.id)
    assert result.return_value == {"attempt": 1, "id": r.id, "value": "v"}


@pytest.mark.parametrize("bad", [object(), {1, 2}, 1j])
def test_a_non_json_argument_raises_type_error_before_sending(uwsgi_fake: FakeUwsgi, bad: object) -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.add.enqueue(bad, 1)
    assert uwsgi_fake.pending() == 0
    assert uwsgi_fake.cache_keys(RESULTS_CACHE) == []


def test_a_full_queue_raises_what_an_offload_raises_and_leaves_no_result(uwsgi_fake: FakeUwsgi) -> None:
    from uwsgi_mules.errors import QueueFull

    sent = 0
    with pytest.raises(QueueFull):
        for _ in range(10_000):  # the step-mode fake raises at once: nothing drains it
            tasks.add.enqueue(1, 2)
            sent += 1
    assert sent > 0 and uwsgi_fake.pending() == sent
    assert len(uwsgi_fake.cache_keys(RESULTS_CACHE)) == sent  # the refused task left no READY result
    assert uwsgi_fake.run_pending() == sent


def test_without_a_task_framework_the_backend_says_what_is_needed() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['django.tasks'] = None; sys.modules['django_tasks'] = None\n"
        "from django.core.exceptions import ImproperlyConfigured\n"
        "try:\n"
        "    import uwsgi_mules.contrib.django.tasks.compat\n"
        "except ImproperlyConfigured as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "needs Django's task framework: Django >= 6.0" in out and "pip install django-tasks" in out, out


def test_unknown_expired_and_forged_ids_do_not_exist(uwsgi_fake: FakeUwsgi) -> None:
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result("nope")
    r = tasks.add.enqueue(1, 2)
    uwsgi_fake.run_pending()
    # a forged value under a real id: never decoded
    raw = uwsgi_fake.cache_get(r.id, RESULTS_CACHE)
    forged = raw[:TAG_SIZE] + raw[TAG_SIZE:].replace(b'"return_value":3', b'"return_value":4')
    uwsgi_fake.cache_update(r.id, forged, 0, RESULTS_CACHE)
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result(r.id)
    assert any("bad signature" in line for line in uwsgi_fake.log_lines)
    # expiry: OPTIONS["RESULTS"]["EXPIRES"] (default one day) on the fake's clock
    r = tasks.add.enqueue(1, 2)
    uwsgi_fake.run_pending()
    uwsgi_fake.advance(86400 + 1)
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result(r.id)


def test_another_tasks_result_is_a_mismatch(uwsgi_fake: FakeUwsgi) -> None:
    r = tasks.add.enqueue(1, 2)
    with pytest.raises(compat.TaskResultMismatch):
        tasks.fail.get_result(r.id)


def test_run_after_never_runs_before_its_time(uwsgi_fake: FakeUwsgi) -> None:
    when = datetime.datetime.fromtimestamp(uwsgi_fake.wall_time() + 60, datetime.timezone.utc)
    r = tasks.add.using(run_after=when).enqueue(3, 4)
    assert r.task.run_after == when
    uwsgi_fake.run_pending()  # the mule takes it and holds it in its waiting room
    uwsgi_fake.advance(59)
    uwsgi_fake.run_pending()
    result = tasks.add.get_result(r.id)
    assert result.status == READY and tasks.RUNS == []
    assert result.task.run_after == when
    uwsgi_fake.advance(2)
    uwsgi_fake.run_pending()
    result = tasks.add.get_result(r.id)
    assert result.status == SUCCESSFUL and result.return_value == 7
    assert result.started_at >= when
    assert tasks.RUNS == [("add", (3, 4))]


def test_retries_run_a_retry_on_error_again_after_its_backoff() -> None:
    options = {"RETRIES": 2, "RETRY_ON": ["tests.django.app_tasks.tasks.TaskFlaked"], "RETRY_BACKOFF": 1.0,
               "RETRY_JITTER": False}
    with override_settings(TASKS={"default": {**TEST_TASKS["default"], "OPTIONS": options}}), \
            FakeUwsgi(**fake_options()) as fake:
        r = tasks.flaky.enqueue(2)
        fake.run_pending()
        first = tasks.flaky.get_result(r.id)
        assert first.status == READY and len(first.errors) == 1 and len(first.worker_ids) == 1
        fake.advance(1.0)
        fake.run_pending()
        assert len(tasks.flaky.get_result(r.id).worker_ids) == 2
        fake.advance(2.0)
        fake.run_pending()
        done = tasks.flaky.get_result(r.id)
        # a task failing for good: FAILED after 1 + RETRIES attempts, one dead task
        never = tasks.flaky.enqueue(5)
        for _ in range(3):
            fake.run_pending()
            fake.advance(4.0)
        dead = tasks.flaky.get_result(never.id)
        assert len(fake.dead_letters) == 1  # kept as a dead task, like any offload
    assert done.status == SUCCESSFUL and done.return_value == 3 and done.attempts == 3
    assert [e.traceback.strip().splitlines()[-1] for e in done.errors] == [
        "tests.django.app_tasks.tasks.TaskFlaked: attempt 1", "tests.django.app_tasks.tasks.TaskFlaked: attempt 2"]
    assert dead.status == FAILED and dead.attempts == 3 and len(dead.errors) == 3
    assert [run for run in tasks.RUNS] == [("flaky", 1), ("flaky", 2), ("flaky", 3)] * 2


@pytest.mark.parametrize("retries", [0, 1])
def test_a_mule_crash_is_retried_with_retries_and_left_running_without(retries: int) -> None:
    with override_settings(TASKS={"default": {**TEST_TASKS["default"], "OPTIONS": {"RETRIES": retries}}}), \
            FakeUwsgi(**fake_options()) as fake:
        r = tasks.crash_once.enqueue()
        for _ in range(3):
            fake.run_pending()
        result = tasks.crash_once.get_result(r.id)
    if retries:  # the respawned mule sent it again: a second attempt, by the record's count too
        assert result.status == SUCCESSFUL and result.return_value == 2 and result.attempts == 2
        assert tasks.RUNS == [("crash_once", 1), ("crash_once", 2)]
    else:  # named in the log, not run again
        assert result.status == compat.TaskResultStatus.RUNNING and result.attempts == 1
        assert tasks.RUNS == [("crash_once", 1)]


def test_signals_are_sent(uwsgi_fake: FakeUwsgi) -> None:
    seen: list[tuple[str, str, str]] = []

    def receiver(name: str) -> Any:
        def receive(sender: type, task_result: Any, **kwargs: Any) -> None:
            seen.append((name, sender.__name__, task_result.status))
        return receive

    receivers = {signal: receiver(name) for name, signal in (
        ("enqueued", compat.task_enqueued), ("started", compat.task_started), ("finished", compat.task_finished))}
    for signal, receive in receivers.items():
        signal.connect(receive)
    try:
        tasks.add.enqueue(1, 2)
        uwsgi_fake.run_pending()
    finally:
        for signal, receive in receivers.items():
            signal.disconnect(receive)
    assert seen == [
        ("enqueued", "MulesBackend", "READY"),
        ("started", "MulesBackend", "RUNNING"),
        ("finished", "MulesBackend", "SUCCESSFUL"),
    ]


def test_what_the_backend_refuses(uwsgi_fake: FakeUwsgi) -> None:
    with pytest.raises(compat.InvalidTask, match="priority"):
        tasks.add.using(priority=10)
    with pytest.raises(compat.InvalidTask, match="aware"):
        tasks.add.using(run_after=datetime.datetime.now())  # naive (USE_TZ = True)
    with pytest.raises(compat.InvalidTask, match="not valid"):
        tasks.add.using(queue_name="elsewhere")  # not in QUEUES


def test_checks_name_queues_without_a_reachable_target() -> None:
    backend = {**TEST_TASKS["default"], "QUEUES": ["default", "notes", "mule2", "mule9", "nowhere", "gone"],
               "OPTIONS": {"TARGETS": {"gone": "no-such-farm"}}}
    with override_settings(TASKS={"default": backend}):
        errors = compat.task_backends["default"].check()
    text = "\n".join(f"{e.id} {e.msg}" for e in errors)
    assert [e.id for e in errors] == ["uwsgi_mules.E103", "uwsgi_mules.E103", "uwsgi_mules.E102"], text
    assert "'gone'" in text and "no-such-farm" in text and "'mule9'" in text and "'nowhere'" in text
    with override_settings(TASKS={"default": {**TEST_TASKS["default"]}}):
        assert compat.task_backends["default"].check() == []


def test_the_ini_command_refuses_a_queue_without_a_target() -> None:
    import io

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    backend = {**TEST_TASKS["default"], "QUEUES": ["default", "nowhere"]}
    with override_settings(TASKS={"default": backend}), pytest.raises(SystemCheckError, match="'nowhere'"):
        call_command("uwsgi_mules_ini", "--settings-module", "django_site.settings", skip_checks=False,
                     stdout=io.StringIO(), stderr=io.StringIO())


def test_a_queue_routed_to_celery_passes_the_checks() -> None:
    from django.conf import settings

    routed = {**settings.UWSGI_MULES, "ROUTES": {"notes": {"APP": "django_site.celery:app"}}}
    with override_settings(UWSGI_MULES=routed):
        assert compat.task_backends["default"].check() == []  # tests/celery runs such tasks on Celery


def test_an_unreachable_target_raises_at_enqueue() -> None:
    backend = {**TEST_TASKS["default"], "OPTIONS": {"TARGETS": {"reports": "no-such-farm"}}}
    with override_settings(TASKS={"default": backend}), FakeUwsgi(**fake_options()) as fake:
        with pytest.raises(UnknownFarm):
            tasks.where.using(queue_name="reports").enqueue("x")
        assert fake.pending() == 0 and fake.cache_keys(RESULTS_CACHE) == []


@pytest.mark.parametrize(
    ("options", "key"),
    [({"NOPE": 1}, "NOPE"), ({"TARGETS": {"q": -1}}, "TARGETS"), ({"RESULTS": {"ITEMS": 1}}, "ITEMS"),
     ({"RESULTS": {"STORE": "a,b"}}, "STORE"), ({"ON_COMMIT": "yes"}, "ON_COMMIT"),
     ({"RETRIES": -1}, "retries"), ({"RETRY_ON": "ValueError"}, "RETRY_ON"), ({"RETRY_ON": ["no.such.Error"]}, "RETRY_ON")],
)
def test_bad_options_are_named(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=key):
        parse_options("default", options)


def test_a_full_results_cache_evicts_the_oldest_with_a_log_line() -> None:
    backend = {**TEST_TASKS["default"], "OPTIONS": {"RESULTS": {"ITEMS": 11, "BLOCKSIZE": 4096}}}
    with override_settings(TASKS={"default": backend}), FakeUwsgi(**fake_options()) as fake:
        ids = []
        for i in range(15):  # one finished result after the other; ids sort by their millisecond
            ids.append(tasks.add.enqueue(i, i).id)
            fake.run_pending()
            fake.advance(0.01)
        evictions = [line for line in fake.log_lines if "is full" in line]
        assert evictions and "evicted the 1 oldest" in evictions[0], fake.log_lines
        with pytest.raises(compat.TaskResultDoesNotExist):
            tasks.add.get_result(ids[0])
        assert tasks.add.get_result(ids[-1]).return_value == 28


def test_on_commit_sends_when_the_transaction_commits(site_db: None) -> None:
    from django.db import transaction

    backend = {**TEST_TASKS["default"], "OPTIONS": {**TEST_TASKS["default"]["OPTIONS"], "ON_COMMIT": True}}
    with override_settings(TASKS={"default": backend}), FakeUwsgi(**fake_options()) as fake:
        with transaction.atomic():
            r = tasks.add.enqueue(1, 1)
            assert fake.pending() == 0
            with pytest.raises(compat.TaskResultDoesNotExist):
                tasks.add.get_result(r.id)
        assert fake.pending() == 1
        with pytest.raises(RuntimeError), transaction.atomic():
            rolled_back = tasks.add.enqueue(2, 2)
            raise RuntimeError
        fake.run_pending()
        assert tasks.add.get_result(r.id).return_value == 2
        with pytest.raises(compat.TaskResultDoesNotExist):
            tasks.add.get_result(rolled_back.id)


# -- rendering --------------------------------------------------------------------------------


def test_the_ini_has_the_results_cache_with_a_store() -> None:
    with override_settings(TASKS={"default": {**TEST_TASKS["default"], "OPTIONS": {}}}):
        text = build_section(settings_module="django_site.settings").as_ini()
        assert fake_options()["caches"][0].name == RESULTS_CACHE
    assert "cache2 = name=uwsgi-mules-tasks,items=2000,blocksize=16384,store=uwsgi-mules-tasks.cache" in text


# -- LOCAL_MODE inline ------------------------------------------------------------------------


@pytest.fixture
def inline_backend() -> Any:
    reset_backends()
    local._local = None
    with override_settings(UWSGI_MULES={**__import__("django.conf").conf.settings.UWSGI_MULES,
                                        "LOCAL_MODE": "inline"}):
        backend = local.ensure_local_backend()
        assert isinstance(backend, local.InlineUwsgi)
        yield backend
    local._local = None
    reset_backends()


def test_inline_runs_at_once_and_records_results(inline_backend: Any) -> None:
    r = tasks.add.enqueue(2, 3)
    assert tasks.add.get_result(r.id).return_value == 5
    bad = tasks.fail.enqueue("inline")  # logged, not raised
    assert tasks.fail.get_result(bad.id).errors[0].exception_class_path.endswith("TaskBroke")
    assert tasks.with_context.get_result(tasks.with_context.enqueue("c").id).return_value["attempt"] == 1
    assert tasks.async_add.get_result(tasks.async_add.enqueue(1, 1).id).return_value == 2
    farm = tasks.where.enqueue("inline")
    assert tasks.where.get_result(farm.id).return_value["mule"] in (1, 2)
    with pytest.raises(TypeError):
        tasks.add.enqueue({1}, 2)
    with pytest.raises(compat.TaskResultDoesNotExist):
        tasks.add.get_result("nope")
