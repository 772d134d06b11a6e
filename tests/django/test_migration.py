"""Migration from ``uwsgiconf.runtime.mules``: the same code, only the import changed.

The "user code" below is written for uwsgiconf; each test renders it with
uwsgiconf's import or with uwsgi-mules' import and nothing else changed.
Under the real ``uwsgi`` binary both flavours run and the tests pin where
uwsgiconf breaks (bare-name collisions, farm offloads and ``get_farms()``
on Python 3, messages dropped on a full queue) and that uwsgi-mules does
not. The uwsgi-mules flavour also runs on the fake backend. This module
does not need Django.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.records import read_jsonl
from tests.support.server import UwsgiServer
from uwsgi_mules import QueueFull, configure
from uwsgi_mules.fake import FakeUwsgi

IMPORTS = {
    "uwsgiconf": "from uwsgiconf.runtime.mules import Farm, Mule, mule_offload",
    "uwsgi_mules": "from uwsgi_mules import Farm, Mule, mule_offload",
}

#: tasks of "app a", written for uwsgiconf
TASKS_A = '''
{import_line}
import json, os, time

def note(what, value, module=__name__):
    path = os.path.join(os.environ["MULES_TEST_DIR"], "done.jsonl")
    with open(path, "a") as fh:
        fh.write(json.dumps({{"module": module, "what": what, "value": value,
                             "mule": Mule.get_current_id()}}) + "\\n")

@Mule(1).offload()
def send(value):
    note("send", value)

@Farm("two").offload()
def for_farm(value):
    note("for_farm", value)

@mule_offload(1)
def slow(seconds):
    time.sleep(seconds)

@mule_offload(1)
def count(value):
    note("count", value)
'''

#: tasks of "app b": a function with the same bare name as app a's
TASKS_B = '''
{import_line}
from {prefix}_a import note

@Mule(1).offload()
def send(value):
    note("send", value, __name__)
'''

#: the WSGI app: one scenario per path, returns what the calls returned
APP = '''
import json
import {prefix}_a as a
import {prefix}_b as b
from {prefix}_a import Farm

def collision():
    return [a.send("from a"), b.send("from b")]

def farm():
    return {{"returned": a.for_farm("to farm"), "farms": [str(f) for f in Farm.get_farms()]}}

def flood():
    a.slow(1.5)
    return [a.count(i) for i in range({flood})]

SCENARIOS = {{"/collision": collision, "/farm": farm, "/flood": flood}}

def application(environ, start_response):
    body = json.dumps(SCENARIOS[environ["PATH_INFO"]]()).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''

FLOOD = 600  # more 100-byte messages than a mule queue holds (about 280)


def write_user_code(directory: Path, flavour: str) -> str:
    """Write the user code with ``flavour``'s import into ``directory``; return the module prefix."""
    prefix = f"mig_{flavour}"
    fields = {"import_line": IMPORTS[flavour], "prefix": prefix, "flood": FLOOD}
    (directory / f"{prefix}_a.py").write_text(TASKS_A.format(**fields))
    (directory / f"{prefix}_b.py").write_text(TASKS_B.format(**fields))
    (directory / f"{prefix}_app.py").write_text(textwrap.dedent(APP.format(**fields)))
    return prefix


def read_done(directory: Path) -> list[dict[str, Any]]:
    return read_jsonl(directory / "done.jsonl")


def wait_done(directory: Path, count: int, timeout: float = 30.0, settle: float = 0.5) -> list[dict[str, Any]]:
    """Records once ``count`` are there (or the timeout passed), after ``settle`` s without new ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(read_done(directory)) < count:
        time.sleep(0.05)
    last = -1
    while len(read_done(directory)) != last and time.monotonic() < deadline + settle:
        last = len(read_done(directory))
        time.sleep(settle)
    return read_done(directory)


# -- the uwsgi-mules flavour on the fake backend -------------------------------------------------


@pytest.fixture
def mules_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MULES_TEST_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    prefix = write_user_code(tmp_path, "uwsgi_mules")
    yield importlib.import_module(f"{prefix}_a"), importlib.import_module(f"{prefix}_b")
    for name in [n for n in sys.modules if n.startswith(prefix)]:
        del sys.modules[name]


def test_fake_same_bare_name_in_two_modules(mules_code: Any, tmp_path: Path) -> None:
    a, b = mules_code
    with FakeUwsgi(mules=3, farms={"two": [2, 3]}) as fake:
        assert [a.send("from a"), b.send("from b")] == [True, True]
        fake.run_pending(raise_errors=True)
    assert [(d["module"], d["value"], d["mule"]) for d in read_done(tmp_path)] == [
        ("mig_uwsgi_mules_a", "from a", 1), ("mig_uwsgi_mules_b", "from b", 1),
    ]


def test_fake_farm_offload_and_get_farms(mules_code: Any, tmp_path: Path) -> None:
    a, _ = mules_code
    with FakeUwsgi(mules=3, farms={"two": [2, 3]}) as fake:
        assert a.for_farm("to farm") is True
        assert [str(f) for f in a.Farm.get_farms()] == ["two: 2, 3"]
        fake.run_pending(raise_errors=True)
    assert [d["mule"] for d in read_done(tmp_path)] in ([2], [3])


def test_fake_full_queue_raises_instead_of_dropping(mules_code: Any) -> None:
    a, _ = mules_code
    configure(send_timeout=0.05)
    try:
        with FakeUwsgi(mules=3, farms={"two": [2, 3]}) as fake:
            sent = 0
            with pytest.raises(QueueFull):
                for i in range(FLOOD):  # nothing reads: the queue fills up
                    assert a.count(i) is True
                    sent += 1
            assert fake.pending() == sent  # every True was queued; the rest raised
    finally:
        configure(send_timeout=10.0)


# -- both flavours under real uWSGI ---------------------------------------------------------------


def run_real(flavour: str, tmp_path: Path) -> dict[str, Any]:
    """Boot real uWSGI with ``flavour``'s user code, run every scenario."""
    prefix = write_user_code(tmp_path, flavour)
    results: dict[str, Any] = {}
    args = ["--module", f"{prefix}_app:application", "--processes", "1",
            "--mule", "--mule", "--mule", "--farm", "two:2,3"]
    with UwsgiServer(tmp_path, args) as server:
        server.wait_for_log("spawned uWSGI mule 3", timeout=30)
        results["collision"] = json.loads(server.get("/collision"))
        results["collision_done"] = wait_done(tmp_path, 2)
        results["farm"] = json.loads(server.get("/farm"))
        results["farm_done"] = [d for d in wait_done(tmp_path, 3) if d["what"] == "for_farm"]
        before = len(read_done(tmp_path))
        results["flood"] = json.loads(server.get("/flood", timeout=120))
        expected = before + results["flood"].count(True)
        results["flood_done"] = [d for d in wait_done(tmp_path, expected, timeout=60) if d["what"] == "count"]
        results["log"] = server.log_text()
    return results


@pytest.mark.real
def test_real_uwsgiconf_breaks_where_documented(real_uwsgi: str, tmp_path: Path) -> None:
    pytest.importorskip("uwsgiconf", reason="the uwsgiconf side needs uwsgiconf installed")
    results = run_real("uwsgiconf", tmp_path)
    # bare-name collision: both calls run app b's `send`
    assert [d["module"] for d in results["collision_done"]] == ["mig_uwsgiconf_b", "mig_uwsgiconf_b"]
    # farm offload: returns None (no delivery report); get_farms() is empty on Python 3
    assert results["farm"] == {"returned": None, "farms": []}
    assert len(results["farm_done"]) == 1  # delivered, but the caller could not know
    # full queue: mule_msg returned False and the calls were dropped silently
    assert False in results["flood"]
    assert len(results["flood_done"]) == results["flood"].count(True) < FLOOD


@pytest.mark.real
def test_real_same_code_with_uwsgi_mules_import(real_uwsgi: str, tmp_path: Path) -> None:
    results = run_real("uwsgi_mules", tmp_path)
    assert results["collision"] == [True, True]
    assert [(d["module"], d["value"]) for d in results["collision_done"]] == [
        ("mig_uwsgi_mules_a", "from a"), ("mig_uwsgi_mules_b", "from b"),
    ]
    assert results["farm"] == {"returned": True, "farms": ["two: 2, 3"]}
    assert [d["mule"] in (2, 3) for d in results["farm_done"]] == [True]
    # the full queue was waited out (the mule drained it after its slow task): nothing lost
    assert results["flood"] == [True] * FLOOD
    assert sorted(d["value"] for d in results["flood_done"]) == list(range(FLOOD))
    assert "Traceback" not in results["log"]


# -- uwsgidecorators.mulefunc -> uwsgi_mules.decorators.mulefunc (fake backend) --------------------

MULEFUNC_A = '''
from uwsgi_mules.decorators import mulefunc
DONE = []

@mulefunc
def send(value):
    DONE.append(("a", value))

@mulefunc(2)
def on_two(value):
    DONE.append(("two", value))

@mulefunc("two")
def on_farm(value):
    DONE.append(("farm", value))
'''

MULEFUNC_B = '''
from uwsgi_mules.decorators import mulefunc
from mig_mulefunc_a import DONE

@mulefunc
def send(value):
    DONE.append(("b", value))
'''


def test_fake_mulefunc_code_after_changing_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uwsgi_mules.decorators", reason="uwsgi_mules.decorators is not in this tree")
    (tmp_path / "mig_mulefunc_a.py").write_text(MULEFUNC_A)
    (tmp_path / "mig_mulefunc_b.py").write_text(MULEFUNC_B)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with FakeUwsgi(mules=3, farms={"two": [2, 3]}) as fake:
            a = importlib.import_module("mig_mulefunc_a")
            b = importlib.import_module("mig_mulefunc_b")
            # the original returns None too; a farm name raised ValueError on Python 3
            assert [a.send(1), b.send(2), a.on_two(3), a.on_farm(4)] == [None] * 4
            assert fake.run_pending(raise_errors=True) == 4
        assert sorted(a.DONE) == [("a", 1), ("b", 2), ("farm", 4), ("two", 3)]  # no bare-name collision
    finally:
        for name in [n for n in sys.modules if n.startswith("mig_mulefunc")]:
            del sys.modules[name]
