"""uwsgi_mules.contrib.django and the example site, in-process (fake backend)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("django", reason="the Django integration tests need Django installed")

from tests.django.site_setup import SITE_DIR, TEST_UWSGI_MULES, setup_django  # noqa: E402

setup_django()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from notes.models import Note  # noqa: E402
from notes.mules import process_note, write_note  # noqa: E402

from tests.django.app_one import mules as app_one  # noqa: E402
from tests.django.app_two import mules as app_two  # noqa: E402
from uwsgi_mules import BackendUnavailable, NotOffloadable  # noqa: E402
from uwsgi_mules.backends.selection import reset_backends  # noqa: E402
from uwsgi_mules.contrib.django import DJANGO_ENTRY_POINT, offload, offload_on_commit  # noqa: E402
from uwsgi_mules.contrib.django import local, mule  # noqa: E402
from uwsgi_mules.contrib.django.conf import parse_settings  # noqa: E402
from uwsgi_mules.contrib.django.ini import fake_options  # noqa: E402
from uwsgi_mules.fake import FakeUwsgi  # noqa: E402
from uwsgi_mules.runtime.targets import Target  # noqa: E402

SITE_INI = SITE_DIR / "ini" / "site.ini"


def site_settings(**changes: Any) -> dict[str, Any]:
    """The example's UWSGI_MULES (as the tests run it) with ``changes``."""
    from django_site.settings import UWSGI_MULES

    return {**UWSGI_MULES, **TEST_UWSGI_MULES, **changes}


def module_level_task(x: int) -> None:
    """Offloaded by tests with various options (nested functions cannot be)."""


@pytest.fixture
def no_backend() -> Any:
    """No active backend before and after (local-mode tests activate one)."""
    reset_backends()
    local._local = None
    yield
    backend = local.local_backend()
    if backend is not None:
        backend.stop()
    local._local = None
    reset_backends()


# -- settings ---------------------------------------------------------------------------


def test_settings_defaults_are_documented_values() -> None:
    settings = parse_settings(None)
    assert settings.send_timeout is None  # uwsgi-mules' own default (10 s) applies
    assert settings.default_target == 0  # the shared queue
    assert settings.local_mode == "inline"
    assert settings.autodiscover is True
    assert settings.mules == (DJANGO_ENTRY_POINT,)
    assert settings.farms == ()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"SEND_TIMEOUT": -1}, "SEND_TIMEOUT"),
        ({"DEFAULT_TARGET": 1.5}, "DEFAULT_TARGET"),
        ({"LOCAL_MODE": "threads"}, "LOCAL_MODE"),
        ({"MULES": "2"}, "MULES"),
        ({"FARMS": {"x": "1,2"}}, "FARMS"),
        ({"MSG_BUFFER": 0}, "MSG_BUFFER"),
        ({"INI": ["master"]}, "INI"),
        ({"TIMEOUT": 1}, "unknown keys"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=key):
        parse_settings(raw)


# -- autodiscovery and dispatch ---------------------------------------------------------------


def test_every_installed_apps_mules_module_is_imported() -> None:
    for name in ("notes.mules", "tests.django.app_one.mules", "tests.django.app_two.mules"):
        assert name in sys.modules, name


def test_default_target_comes_from_settings() -> None:
    assert write_note.offloading.target == Target("farm", farm="notes")  # type: ignore[attr-defined]
    assert app_two.record.offloading.target == Target("mule", 2)  # type: ignore[attr-defined]
    with override_settings(UWSGI_MULES=site_settings(DEFAULT_TARGET=0)):
        shared = offload()(module_level_task)
    assert shared.offloading.target == Target("shared")  # type: ignore[attr-defined]


def test_same_bare_name_in_two_apps_runs_each_function(uwsgi_fake: FakeUwsgi) -> None:
    app_one.RESULTS.clear()
    app_two.RESULTS.clear()
    assert app_one.record("one") is True
    assert app_two.record("two") is True
    assert uwsgi_fake.run_pending(raise_errors=True) == 2
    assert app_one.RESULTS == [("app_one", "one")]
    assert app_two.RESULTS == [("app_two", ("two", 2))]


# -- the example site with Django's test client ---------------------------------------------------


def test_view_offloads_a_task_that_writes_a_row(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    response = Client().post("/notes/write?text=hello")
    assert response.status_code == 202
    assert not Note.objects.exists()  # queued, not run
    assert uwsgi_fake.run_pending(raise_errors=True) == 1
    note = Note.objects.get()
    assert (note.text, note.status) == ("hello", "written")
    assert note.mule in (1, 2)  # a mule of farm "notes"
    assert Client().get("/notes/").json()["notes"] == [note.as_dict()]


def test_view_sends_on_commit_and_the_mule_finds_the_row(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    response = Client().post("/notes/submit?text=later")
    note_id = response.json()["id"]
    assert uwsgi_fake.pending() == 1
    assert uwsgi_fake.run_pending(raise_errors=True) == 1
    note = Note.objects.get(pk=note_id)
    assert note.status == "processed" and note.mule in (1, 2)


def test_on_commit_sends_after_commit_and_never_after_rollback(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    with transaction.atomic():
        note = Note.objects.create(text="a")
        assert process_note(note.pk) is None
        assert uwsgi_fake.pending() == 0  # not before the commit
    assert uwsgi_fake.pending() == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        process_note(note.pk)
        offload_on_commit(write_note, "never")
        raise RuntimeError("rolled back")
    assert uwsgi_fake.pending() == 1  # neither was sent

    process_note(note.pk)  # autocommit: sent at once
    assert uwsgi_fake.pending() == 2
    assert uwsgi_fake.run_pending(raise_errors=True) == 2


def test_offload_on_commit_any_offloaded_function(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    with transaction.atomic():
        offload_on_commit(write_note, "deferred")
        offload_on_commit(app_two.record, "x")
        assert uwsgi_fake.pending() == 0
    assert uwsgi_fake.pending() == 2
    uwsgi_fake.run_pending(raise_errors=True)
    assert Note.objects.get().text == "deferred"


def test_bad_arguments_fail_in_the_caller_not_after_commit(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    with transaction.atomic():
        with pytest.raises(NotOffloadable):
            offload_on_commit(write_note, lambda: None)
        with pytest.raises(NotOffloadable):
            process_note(lambda: None)
        with pytest.raises(NotOffloadable, match="not an offloaded function"):
            offload_on_commit(print, "x")
    assert uwsgi_fake.pending() == 0


def test_arguments_are_taken_at_call_time(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    values = ["before"]
    with transaction.atomic():
        offload_on_commit(app_one.record, values)
        values.append("after")
    app_one.RESULTS.clear()
    uwsgi_fake.run_pending(raise_errors=True)
    assert app_one.RESULTS == [("app_one", ["before"])]


def test_on_commit_with_another_database_alias(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    on_default = offload(1, on_commit=True, using="default")(module_level_task)
    with transaction.atomic(using="default"):
        on_default(1)
        assert uwsgi_fake.pending() == 0
    assert uwsgi_fake.pending() == 1


# -- the mule entry point ----------------------------------------------------------------------------


def test_entry_point_offers_its_loop_to_the_fake() -> None:
    assert mule.run.mule_loop is mule.django_mule_loop  # type: ignore[attr-defined]
    assert fake_options()["topology"].mules[0].program == DJANGO_ENTRY_POINT


def test_connections_are_cleaned_before_and_after_each_task(
    site_db: None, uwsgi_fake: FakeUwsgi, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    connection.ensure_connection()
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: calls.append(connection.in_atomic_block))
    write_note("x")
    uwsgi_fake.run_pending(raise_errors=True)
    assert calls == [False, False]

    calls.clear()
    with transaction.atomic():  # a caller's transaction (step mode) is left alone
        write_note("y")
        uwsgi_fake.run_pending(raise_errors=True)
    assert calls == []


def test_inherited_connections_are_dropped_without_closing(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    inherited = SimpleNamespace(connection=object(), in_atomic_block=False, close=lambda: closed.append("x"))
    monkeypatch.setattr("django.db.connections.all", lambda initialized_only=False: [inherited])
    mule.discard_inherited_connections()
    assert inherited.connection is None and closed == []


def test_task_errors_are_logged_and_the_mule_goes_on(site_db: None, uwsgi_fake: FakeUwsgi) -> None:
    process_note(123456)  # no such row: DoesNotExist in the mule
    write_note("after")
    assert uwsgi_fake.run_pending() == 2
    assert len(uwsgi_fake.task_errors) == 1
    assert Note.objects.get().text == "after"


def test_threaded_fake_runs_the_django_mule_loop(site_db: None) -> None:
    with FakeUwsgi(threaded=True, **fake_options()) as fake:
        Client().post("/notes/write?text=threaded")
        fake.join(timeout=20)
        assert not fake.task_errors
    assert Note.objects.get().status == "written"


# -- what offloads do outside uWSGI ------------------------------------------------------------------


def test_local_mode_inline_runs_before_the_call_returns(site_db: None, no_backend: None) -> None:
    with override_settings(UWSGI_MULES=site_settings(LOCAL_MODE="inline")):
        backend = local.ensure_local_backend()
        assert isinstance(backend, local.InlineUwsgi)
        assert Client().post("/notes/write?text=inline").status_code == 202
        assert Note.objects.get().mule in (1, 2)  # already written, as a mule of farm "notes"
        process_note(Note.objects.get().pk)
        assert Note.objects.get().status == "processed"
        with pytest.raises(NotOffloadable):
            write_note(lambda: None)  # what a mule could not receive fails here too


def test_local_mode_fake_runs_tasks_in_mule_threads(site_db: None, no_backend: None) -> None:
    with override_settings(UWSGI_MULES=site_settings(LOCAL_MODE="fake")):
        backend = local.ensure_local_backend()
        assert backend is not None and not isinstance(backend, local.InlineUwsgi)
        Client().post("/notes/write?text=background")
        backend.join(timeout=20)
    assert Note.objects.get().text == "background"


def test_local_mode_off_keeps_backend_unavailable(no_backend: None) -> None:
    with override_settings(UWSGI_MULES=site_settings(LOCAL_MODE="off")):
        assert local.ensure_local_backend() is None
        with pytest.raises(BackendUnavailable):
            write_note("x")


def test_no_local_backend_when_one_is_active(uwsgi_fake: FakeUwsgi) -> None:
    with override_settings(UWSGI_MULES=site_settings(LOCAL_MODE="inline")):
        assert local.ensure_local_backend() is None


def test_request_started_reactivates_a_removed_local_backend(site_db: None, no_backend: None) -> None:
    with override_settings(UWSGI_MULES=site_settings(LOCAL_MODE="inline")):
        first = local.ensure_local_backend()
        reset_backends()  # what the uwsgi_fake fixture does on teardown
        local.ensure_local_backend_on_request(sender=None)
        assert local.ensure_local_backend() is None  # active again
        assert local.local_backend() is first
        write_note("again")
    assert Note.objects.get().text == "again"


# -- the INI command --------------------------------------------------------------------------------


def render(*args: str) -> str:
    out = io.StringIO()
    call_command("uwsgi_mules_ini", "--settings-module", "django_site.settings", *args, stdout=out)
    return out.getvalue()


def test_committed_example_ini_is_what_the_command_renders() -> None:
    assert render() == SITE_INI.read_text(encoding="utf-8"), (
        "run: cd examples/django_site && python manage.py uwsgi_mules_ini -o ini/site.ini"
    )
    assert "is up to date" in render("--check", str(SITE_INI))


def test_command_writes_and_checks(tmp_path: Path) -> None:
    target = tmp_path / "out.ini"
    render("-o", str(target))
    assert target.read_text() == SITE_INI.read_text()
    target.write_text(target.read_text() + "processes = 9\n")
    with pytest.raises(CommandError, match="out of date"):
        render("--check", str(target))
    assert render("--section", "site").startswith("[site]\n")


def test_command_renders_the_pyuwsgi_interpreter_on_request() -> None:
    import sys

    assert "binary-path" not in render()
    assert f"binary-path = {sys.executable}\n" in render("--pyuwsgi")
    assert "binary-path = /srv/venv/bin/python\n" in render("--pyuwsgi", "/srv/venv/bin/python")
    with pytest.raises(CommandError, match="absolute path"):
        render("--pyuwsgi", "venv/bin/python")


def test_rendered_ini_has_the_settings_layout() -> None:
    text = render()
    assert text.count(f"mule = {DJANGO_ENTRY_POINT}\n") == 2
    assert "farm = notes:1,2\n" in text
    assert "module = django_site.wsgi:application\n" in text
    assert "env = DJANGO_SETTINGS_MODULE=django_site.settings\n" in text
    assert FakeUwsgi.from_ini(SITE_INI).topology() == fake_options()["topology"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"INI": {"mule": "x.py"}}, "set_mules_params"),
        ({"INI": {"lazy-apps": True}}, "lazy-apps"),
        ({"FARMS": {"notes": [3]}}, "mule 3"),
    ],
)
def test_command_reports_bad_settings(changes: dict[str, Any], message: str) -> None:
    with override_settings(UWSGI_MULES=site_settings(**changes)), pytest.raises(CommandError, match=message):
        render()


def test_ini_options_keep_order_and_repeat_lists() -> None:
    with override_settings(UWSGI_MULES=site_settings(MULES=[DJANGO_ENTRY_POINT, None], FARMS={},
                                                      INI={"processes": 1, "pythonpath": ["a", "b"]})):
        text = render()
    assert "pythonpath = a\npythonpath = b\n" in text
    assert f"mule = {DJANGO_ENTRY_POINT}\nmule =\n" in text

