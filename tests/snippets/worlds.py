"""What the documentation's blocks run in.

A Markdown file's blocks run in order in one namespace (as a reader types
them into one session), inside a *world*: a working directory, an active
fake uWSGI with the layout the docs use, the names in ``world/doc_names.py``,
the modules in ``world/`` (``myapp.tasks``, ``legacy_app``) and the pytest
fixtures that blocks' ``test_*`` functions ask for. Pick a world per file in
:data:`WORLDS` (default: :func:`core_world`).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime

from .blocks import REPO_ROOT

WORLD_DIR = Path(__file__).resolve().parent / "world"
ENTRY = "uwsgi_mules.mule:run"

#: the layout of the docs' INI (README "Example", docs/quickstart.md), plus
#: what docs/signals.md uses (farm "x", 2 workers, lock 1)
CORE_LAYOUT: dict[str, Any] = {
    "mules": [ENTRY, ENTRY, None],
    "farms": {"reports": [1, 2], "x": [1, 2]},
    "workers": 2,
    "locks": 1,
}

#: deploy/uwsgi.ini in the working directory (docs/testing.md reads it)
DEPLOY_INI = """\
[uwsgi]
master = true
module = myapp.wsgi:application
mule = uwsgi_mules.mule:run
mule = uwsgi_mules.mule:run
mule =
farm = reports:1,2
"""


class WorldUnavailable(Exception):
    """This world cannot be set up here (e.g. Django is not installed): its blocks are skipped."""


class BlockUnavailable(Exception):
    """Raised by a stand-in of :mod:`doc_names` that needs what this environment
    lacks (e.g. uwsgiconf): that block is skipped, the others still run."""


def call_fixture_function(func: Any) -> Any:
    """Call a function decorated with ``@pytest.fixture`` (pytest refuses direct calls)."""
    wrapped = getattr(func, "_get_wrapped_function", None)
    if wrapped is not None:
        return wrapped()()
    return inspect.unwrap(func)()


class World:
    """A running world: the session fake and the fixtures for ``test_*`` functions."""

    def __init__(self, workdir: Path, fake: FakeUwsgi, fixtures: dict[str, Callable[[], Any]] | None = None) -> None:
        self.workdir = workdir
        self.fake = fake
        self.extra_fixtures = dict(fixtures or {})

    def namespace(self) -> dict[str, Any]:
        from doc_names import NAMES  # world/ is on sys.path

        return {"__name__": "__doc_snippets__", "uwsgi_fake": self.fake, **NAMES}

    def after_block(self) -> None:
        """Run what the block offloaded on the session fake; its errors fail the block."""
        self.fake.run_pending(raise_errors=True)

    def fake_options(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """The ``uwsgi_fake_options`` fixture: the docs' own when a block defined one."""
        defined = namespace.get("uwsgi_fake_options")
        if defined is None:
            from uwsgi_mules.testing import pytest_plugin

            defined = pytest_plugin.uwsgi_fake_options
        return dict(call_fixture_function(defined))

    def call_test(self, func: Callable[..., Any], namespace: dict[str, Any]) -> None:
        """Call a ``test_*`` function a block defined, with the fixtures it names."""
        with contextlib.ExitStack() as stack:
            kwargs = {name: self._fixture(name, namespace, stack) for name in inspect.signature(func).parameters}
            func(**kwargs)

    def _fixture(self, name: str, namespace: dict[str, Any], stack: contextlib.ExitStack) -> Any:
        if name == "uwsgi_fake":
            reset_runtime()
            stack.callback(reset_runtime)
            return stack.enter_context(FakeUwsgi(**self.fake_options(namespace)))
        if name == "uwsgi_dropin":
            from uwsgi_mules.testing.dropin import install_dropin

            reset_runtime()
            stack.callback(reset_runtime)
            dropin = install_dropin(**self.fake_options(namespace))
            stack.callback(dropin.uninstall)
            return dropin
        if name == "uwsgi_fake_options":
            return self.fake_options(namespace)
        if name == "tmp_path":
            return Path(tempfile.mkdtemp(dir=self.workdir))
        if name in self.extra_fixtures:
            return self.extra_fixtures[name]()
        raise LookupError(
            f"a documented test asks for fixture {name!r}, which the doc snippet runner does not provide: "
            "add it to tests/snippets/worlds.py"
        )


@contextlib.contextmanager
def core_world(workdir: Path) -> Iterator[World]:
    """The library without a framework: an active fake with :data:`CORE_LAYOUT`."""
    (workdir / "deploy").mkdir()
    (workdir / "deploy" / "uwsgi.ini").write_text(DEPLOY_INI)
    with FakeUwsgi(**CORE_LAYOUT) as fake:
        yield World(workdir, fake)


@contextlib.contextmanager
def django_world(workdir: Path) -> Iterator[World]:
    """The example project (examples/django_site) set up on a fresh SQLite file,
    the fake with its layout, and Django's test ``client``."""
    try:
        import django
    except ImportError as exc:
        raise WorldUnavailable("Django is not installed here (the django42, django5, django60, django61 and celery tox envs have it)") from exc
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    _backport_as_django_tasks()
    sys.path.insert(0, str(REPO_ROOT / "examples" / "django_site"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_site.settings"
    os.environ["DJANGO_SITE_DB"] = str(workdir / "db.sqlite3")
    django.setup()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from uwsgi_mules.contrib.django.ini import fake_options

    with FakeUwsgi(**fake_options()) as fake:
        yield World(workdir, fake, fixtures={"client": Client})


def _backport_as_django_tasks() -> None:
    """The docs import Django 6's ``django.tasks``; on Django 4.2/5 the
    ``django-tasks`` backport (same API) answers that import."""
    try:
        import django.tasks  # noqa: F401
    except ImportError:
        try:
            import django_tasks
        except ImportError:
            return
        sys.modules["django.tasks"] = django_tasks


#: Markdown file (relative to the repository) -> its world
WORLDS: dict[str, Callable[[Path], contextlib.AbstractContextManager[World]]] = {
    "docs/django.md": django_world,
}


def world_for(rel: str) -> Callable[[Path], contextlib.AbstractContextManager[World]]:
    return WORLDS.get(rel, core_world)
