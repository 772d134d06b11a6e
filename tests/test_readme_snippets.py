"""The README's examples run as written (on the fake backend)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _load(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"README:{name}", "exec"), module.__dict__)  # noqa: S102 - our own README
    return module


@pytest.fixture(autouse=True)
def _clean() -> None:
    yield
    reset_runtime()
    reset_backends()
    for name in [n for n in sys.modules if n.startswith("readme_")]:
        del sys.modules[name]


def test_offload_example_runs_each_call_once_in_the_right_mule() -> None:
    source = next(b for b in _python_blocks() if "def resize_image" in b)
    with FakeUwsgi(mules=["uwsgi_mules.mule:run", "uwsgi_mules.mule:run", None], farms={"reports": [1, 2]}) as fake:
        module = _load("readme_tasks", source)
        module.view(request=None)
        module.send_email("a@example.com")
        assert fake.pending() == 3
        assert fake.run_pending() == 3
        assert fake.task_errors == []


def test_signal_example_registers_on_the_fake_master() -> None:
    source = next(b for b in _python_blocks() if "Signal(17)" in b)
    with FakeUwsgi(mules=3, farms={"reports": [1, 2]}) as fake:
        with fake.as_master():
            module = _load("readme_signals", source)
        assert fake.signal_registered(17)
        module.render(7)
        assert fake.run_pending() == 1
