from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_uwsgi

from .harness import HARNESSES, Harness


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """Every contract scenario runs once per backend."""
    kind = request.param
    if kind == "real":
        require_real_uwsgi()
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("MULES_TEST_DIR", str(workdir))
    instance = HARNESSES[kind](workdir)
    try:
        yield instance
    finally:
        instance.stop()
