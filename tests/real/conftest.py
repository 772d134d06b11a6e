"""Fixtures of the real-uWSGI tests."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.support.server import REPO_ROOT, uwsgi_command

PLUGIN_DIR = REPO_ROOT / "plugin"


@pytest.fixture(scope="session")
def plugin_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a freshly built ``mules_plugin.so`` (or the one the tox
    ``plugin`` env built, from ``UWSGIMULES_TEST_PLUGIN``)."""
    flavour = require_real_uwsgi()
    prebuilt = os.environ.get("UWSGIMULES_TEST_PLUGIN")
    if prebuilt and Path(prebuilt).is_file():
        return Path(prebuilt)
    if flavour == "pyuwsgi":
        pytest.skip(
            "pyuwsgi cannot load uWSGI plugins (their 'uwsgi' symbol lives in a "
            "Python extension loaded RTLD_LOCAL: 'undefined symbol: uwsgi'); the "
            "runtime falls back to retrying in Python there"
        )
    # parallel test processes (pytest-xdist) share one build: the first builds
    # it under a lock in the run's common temp dir, the others wait and reuse it
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None
    build_dir = (shared / "plugin_build") if shared else tmp_path_factory.mktemp("plugin_build")
    build_dir.mkdir(exist_ok=True)
    with open(build_dir.parent / "plugin_build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = sorted(build_dir.glob("*_plugin.so"))
        if not built:
            built = build_plugin(build_dir)
    return built[0]


def build_plugin(build_dir: Path) -> list[Path]:
    """Build ``plugin/`` with this environment's ``uwsgi --build-plugin`` in ``build_dir``."""
    command = uwsgi_command()
    assert command is not None
    result = subprocess.run(
        [command, "--build-plugin", str(PLUGIN_DIR)], cwd=build_dir, capture_output=True, text=True, timeout=300
    )
    built = sorted(build_dir.glob("*_plugin.so"))
    assert result.returncode == 0 and built, f"plugin build failed:\n{result.stdout}\n{result.stderr}"
    return built
