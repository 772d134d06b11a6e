"""uwsgiconf's own mule tests, run against uwsgi-mules with the import swapped.

Ported from uwsgiconf 2.4.0 (BSD-3-Clause, Copyright (c) Igor Starikov):
``tests/options/test_workers.py`` (``test_mules``) and
``tests/runtime/test_runtime_mules.py`` (``test_mule``, ``test_farm``). The
cases and expected lines are uwsgiconf's; ``from uwsgiconf... import`` became
``from uwsgi_mules... import``. Adapted, because uwsgiconf's tests run on its
stub, which runs an offload inline and answers ``get_message()`` outside a
mule:

* the runtime tests run on the fake backend: ``monkeypatch`` of
  ``Mule.get_current_id`` / ``uwsgi.opt`` became ``fake.as_mule(1)`` and a
  fake with farm ``myfarm: 1, 2, 3``;
* an offloaded call is queued, so ``fake.run_pending()`` runs it before the
  assertion, and the offloaded functions are module-level (uwsgi-mules
  refuses nested functions: a mule could not import them);
* ``get_message()`` with nothing queued is asked with ``timeout=0`` in a mule
  (outside a mule it raises ``NotInMule``, a ``ValueError``, as uWSGI does),
  and the farm's ``ping`` is read back instead of being dropped by the stub;
  ``Farm.get_message`` takes no timeout (uWSGI's ``farm_get_msg()`` has none),
  so the farm's empty-queue check is left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from uwsgi_mules import Farm, Mule, NotInMule
from uwsgi_mules.config import Section
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime

# -- tests/options/test_workers.py: test_mules ------------------------------------------


def rendered(section: Section) -> str:
    return section.as_ini()


def farms_count_and_str() -> Section:
    section = Section()
    return section.workers.set_mules_params(farms=[
        section.workers.mule_farm("first", 2),
        section.workers.mule_farm("second", "3"),
    ])


def farms_lists() -> Section:
    section = Section()
    return section.workers.set_mules_params(farms=[
        section.workers.mule_farm("first", [1]),
        section.workers.mule_farm("second", [2, 3, 4]),
    ])


@pytest.mark.parametrize(("lines", "build"), [
    (["mule-harakiri = 3"], lambda: Section().workers.set_mules_params(harakiri_timeout=3)),
    (["farm = first:1,2", "farm = second:3,4,5", "mules = 5"], farms_count_and_str),
    (["farm = first:1", "farm = second:2,3,4", "mules = 4"], farms_lists),
    (["mule = mule1.py", "mule = mule2.py"],
     lambda: Section().workers.set_mules_params(mules=["mule1.py", "mule2.py"])),
], ids=["harakiri", "farm-counts", "farm-lists", "mule-scripts"])
def test_mules(lines: list[str], build: object) -> None:
    source = rendered(build())  # type: ignore[operator]
    for line in lines:
        assert line in source, source


# -- tests/runtime/test_runtime_mules.py -----------------------------------------------

RESULT: list[int] = []


@pytest.fixture
def fake() -> Iterator[FakeUwsgi]:
    reset_runtime()
    RESULT.clear()
    with FakeUwsgi(mules=3, farms={"myfarm": [1, 2, 3]}, workers=1) as instance:
        yield instance
    reset_runtime()


@Mule(1).offload()
def offloaded_to_mule(add: int) -> None:
    RESULT.append(add)


@Farm("myfarm").offload()
def offloaded_to_farm() -> None:
    RESULT.append(44)


def test_mule(fake: FakeUwsgi) -> None:
    with pytest.raises(NotInMule):
        Mule.get_message()  # outside a mule (uwsgiconf's stub: a falsy value)
    current_mule = Mule.get_current()
    assert current_mule is None

    with fake.as_mule(1):
        assert not Mule.get_message(timeout=0)
        current_mule = Mule.get_current()
        assert f"{current_mule}" == "1"
        assert current_mule is not None and current_mule.send("some")
        assert Mule.get_message(timeout=0) == "some"

    offloaded_to_mule(2)
    fake.run_pending()
    assert RESULT == [2]


def test_farm(fake: FakeUwsgi) -> None:
    farms = Farm.get_farms()
    assert len(farms) == 1

    farm = farms[0]
    assert str(farm) == "myfarm: 1, 2, 3"
    assert not farm.is_mine

    farm.send("ping")
    with fake.as_mule(1):
        assert farm.is_mine
        # uWSGI's farm_get_msg() has no timeout: uwsgi-mules refuses timeout>=0
        # (see Farm.get_message), so uwsgiconf's empty-queue check is left out
        assert Farm.get_message() == "ping"

    offloaded_to_farm()
    fake.run_pending()
    assert RESULT == [44]
