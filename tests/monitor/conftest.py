"""Fixtures of the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi
from tests.monitor.instance import Instance, monitored_instance


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    """A running instance (real uWSGI; the C plugin when the env built one)."""
    require_real_uwsgi()
    with monitored_instance(tmp_path) as running:
        yield running
