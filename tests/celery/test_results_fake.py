"""``submit()`` on local mules: results through the uWSGI cache, on the fake
(the same scenario runs on real uWSGI in test_celery_real.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.celery import tasks
from uwsgi_mules import reset_runtime
from uwsgi_mules.backends.selection import reset_backends
from uwsgi_mules.layout.caches import RESULTS_CACHE, CacheSpec
from uwsgi_mules.config import Section
from uwsgi_mules.errors import TopologyError
from uwsgi_mules.fake import FakeUwsgi
from uwsgi_mules.runtime.results import (
    RemoteTaskError,
    ResultsUnavailable,
    ResultTimeout,
    configure_results,
    reset_results,
)
from uwsgi_mules.runtime.routing import reset_routes

MULES = ["uwsgi_mules.mule:run", "uwsgi_mules.mule:run"]


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    reset_runtime()
    reset_routes()
    reset_results()
    yield
    reset_results()
    reset_runtime()
    reset_backends()


def make_fake(items: int = 64, blocksize: int = 65536, **kwargs: object) -> FakeUwsgi:
    return FakeUwsgi(MULES, {"reports": [1, 2]}, caches=[CacheSpec(RESULTS_CACHE, items, blocksize)], **kwargs)


def test_submit_returns_the_value_after_the_mule_ran_it() -> None:
    with make_fake() as fake:
        handle = tasks.add.submit(2, 3)
        assert handle.ready() is False
        with pytest.raises(ResultTimeout):
            handle.result(timeout=0.01)
        assert fake.run_pending(raise_errors=True) == 1
        assert handle.ready() is True
        assert handle.result(timeout=1) == 5
        assert handle.result() == 5  # read again: kept in the handle
        assert fake.cache_keys(RESULTS_CACHE) == [], "a read result frees its cache slot"


def test_mule_target_and_mulefunc_submit() -> None:
    with make_fake() as fake:
        square = tasks.square.submit(9)
        double = tasks.legacy_double.submit(4)
        fake.run_pending(raise_errors=True)
        assert (square.result(1), double.result(1)) == (81, 8)


def test_raising_task_reraises_with_remote_type_message_and_traceback() -> None:
    with make_fake() as fake:
        handle = tasks.fail.submit("gone")
        fake.run_pending()
        assert len(fake.task_errors) == 1, "the mule still logs the failed task"
        with pytest.raises(RemoteTaskError) as info:
            handle.result(timeout=1)
    assert info.value.remote_type == "KeyError"
    assert info.value.remote_message == "'gone'"
    assert "raise KeyError(message)" in info.value.remote_traceback


def test_plain_calls_store_nothing() -> None:
    with make_fake() as fake:
        assert tasks.add(1, 2) is True
        fake.run_pending(raise_errors=True)
        assert fake.cache_keys(RESULTS_CACHE) == []


def test_result_larger_than_the_block_gives_a_clear_error() -> None:
    with make_fake(blocksize=1024) as fake:
        handle = tasks.big_result.submit(4096)
        fake.run_pending()
        with pytest.raises(RemoteTaskError, match="refused by the uWSGI cache .* larger than its blocksize") as info:
            handle.result(timeout=1)
        assert info.value.remote_type.endswith("ResultsUnavailable")
        assert any("not stored in cache" in line for line in fake.log_lines)


def test_full_cache_is_logged_and_the_caller_times_out() -> None:
    with make_fake(items=3) as fake:  # 2 values fit
        handles = [tasks.add.submit(n, 0) for n in range(3)]
        fake.run_pending()
        assert [h.result(timeout=1) for h in handles[:2]] == [0, 1]
        assert any("is FULL" in line for line in fake.log_lines)
        assert any("not even the error" in line for line in fake.log_lines)
        with pytest.raises(ResultTimeout):
            handles[2].result(timeout=0.05)


def test_results_expire() -> None:
    configure_results(result_expires=30)
    with make_fake() as fake:
        handle = tasks.add.submit(1, 1)
        fake.run_pending()
        fake.advance(29)
        assert handle.ready()
        fake.advance(2)
        assert not handle.ready()
        with pytest.raises(ResultTimeout):
            handle.result(timeout=0.01)


def test_without_results_cache_submit_explains_how_to_add_it() -> None:
    with FakeUwsgi(MULES, {"reports": [1, 2]}) as fake:
        with pytest.raises(ResultsUnavailable, match="cache2 = name=uwsgi-mules-results"):
            tasks.add.submit(1, 1)
        assert fake.pending() == 0


def test_threaded_mules_return_1000_results() -> None:
    with make_fake(items=1100, threaded=True):
        handles = [tasks.add.submit(n, 1) for n in range(1000)]
        assert [h.result(timeout=30) for h in handles] == [n + 1 for n in range(1000)]


def test_section_renders_the_results_cache_and_the_fake_reads_it() -> None:
    section = Section()
    section.workers.set_mules_params(mules=MULES, farms=[section.workers.mule_farm("reports", [1, 2])])
    section.set_results_cache(items=500, blocksize=4096)
    assert "cache2 = name=uwsgi-mules-results,items=500,blocksize=4096" in section.as_ini()
    fake = FakeUwsgi.from_section(section)
    assert fake.caches.specs() == [CacheSpec(RESULTS_CACHE, 500, 4096)]
    with pytest.raises(TopologyError):
        section.add_cache("bad,name", items=10)
    with pytest.raises(TopologyError):
        section.add_cache("ok", items=1)


def test_fake_cache_has_uwsgi_return_values() -> None:
    fake = FakeUwsgi(1, caches=["name=c,items=3,blocksize=8"])
    assert fake.cache_set("k", b"v") is True
    assert fake.cache_set("k", b"w") is None  # exists: set refuses
    assert fake.cache_update("k", b"w") is True
    assert fake.cache_get("k") == b"w" and fake.cache_get("k", "c") == b"w"  # the first cache is the default
    assert fake.cache_set("big", b"123456789", 0, "c") is None  # larger than blocksize
    assert fake.cache_set("k2", b"v", 0, "c") is True
    assert fake.cache_set("k3", b"v", 0, "c") is None  # items=3 holds 2
    assert fake.cache_exists("k3", "c") is None and fake.cache_exists("k2", "c") is True
    assert fake.cache_del("k2", "c") is True and fake.cache_del("k2", "c") is None
    assert fake.cache_get("k", "nope") is None and fake.cache_set("x", b"v", 0, "nope") is None
    with pytest.raises(ValueError, match="no local uWSGI cache"):
        fake.cache_keys("nope")
