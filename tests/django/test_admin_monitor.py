"""The Django admin's "Mules" section, tested with Django's test client in a
process of its own (the admin, auth and sessions apps are not in the example
site the other Django tests configure): tests/django/admin_site/admin_checks.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django", reason="the Django admin section needs Django (tox envs django42, django5, django6x)")

from tests.support.server import REPO_ROOT  # noqa: E402


def test_admin_section_with_the_test_client(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.django.admin_site.settings",
           "ADMIN_SITE_RUNTIME_DIR": str(tmp_path / "runtime"), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:django",
         "-rA", "tests/django/admin_site/admin_checks.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    print(done.stdout[-6000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stdout[-6000:]
    assert "7 passed" in done.stdout
