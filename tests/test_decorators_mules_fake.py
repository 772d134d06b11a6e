"""``@mule``, ``@muleloop``, ``@mulemsg``, ``@farm`` on the fake: what the
real-uWSGI comparison (tests/real/test_mule_decorators.py) cannot show."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from uwsgi_mules import UnknownFarm, UnknownMule
from uwsgi_mules.decorators import farm, mule, muleloop, mulemsg, postfork_chain, reset_decorators
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.core.state import reset_runtime

SEEN: list[tuple[str, int, object]] = []


@pytest.fixture
def fake() -> Iterator[FakeUwsgi]:
    reset_runtime()
    reset_decorators()
    SEEN.clear()
    with FakeUwsgi(mules=3, farms={"f": [2, 3]}, workers=1) as instance:
        yield instance
    reset_decorators()
    reset_runtime()


def test_decorators_return_the_function_and_check_the_layout(fake: FakeUwsgi) -> None:
    def job(message: bytes = b"") -> None: ...

    with fake.as_master():
        assert mule(1)(job) is job and muleloop(2)(job) is job
        assert mulemsg(3)(job) is job and farm("f")(job) is job and farm()(job) is job
        assert len(postfork_chain) == 5
        with pytest.raises(UnknownMule, match="mule 4 does not exist"):
            mule(4)
        with pytest.raises(UnknownMule):
            mulemsg(0)
        with pytest.raises(UnknownFarm, match="farm 'g' does not exist"):
            farm("g")


def test_farm_messages_go_to_one_farm_mule_and_mule_messages_to_their_mule(fake: FakeUwsgi) -> None:
    with fake.as_master():
        farm("f")(lambda message: SEEN.append(("farm", fake.mule_id(), message)))
        mulemsg(1)(lambda message: SEEN.append(("mulemsg", fake.mule_id(), message)))
    fake.simulate_fork()
    with fake.as_worker(1):
        fake.farm_msg("f", b"x")
        fake.mule_msg(b"y", 1)
    fake.run_pending()
    farm_runs = [(mule_id, message) for kind, mule_id, message in SEEN if kind == "farm"]
    assert [entry for entry in SEEN if entry[0] == "mulemsg"] == [("mulemsg", 1, b"y")]
    assert len(farm_runs) == 1 and farm_runs[0][0] in (2, 3) and farm_runs[0][1] == b"x"


def test_a_mule_function_that_raises_is_reported(fake: FakeUwsgi) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    with fake.as_master():
        mule(2)(broken)
    fake.simulate_fork()
    assert [(where, type(exc).__name__) for where, exc in fake.task_errors] == [
        ("post_fork_hook in mule 2", "RuntimeError")
    ]


def test_mulemsg_in_a_threaded_fake(fake: FakeUwsgi) -> None:
    with FakeUwsgi(mules=2, workers=1, threaded=True) as threaded:
        with threaded.as_master():
            mulemsg(2)(lambda message: SEEN.append(("mulemsg", threaded.mule_id(), message)))
        threaded.simulate_fork()
        with threaded.as_worker(1):
            for i in range(5):
                assert threaded.mule_msg(b"m%d" % i, 2)
        threaded.join()
    assert SEEN == [("mulemsg", 2, b"m%d" % i) for i in range(5)]
