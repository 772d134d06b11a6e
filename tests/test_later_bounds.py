"""Run-later times at the edges: a huge delay is a ValueError, a time before
1970 is in the past and runs at once (as the docstrings say)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from tests import retry_tasks as tasks
from uwsgi_mules.fake import FakeUwsgi

SERVE = "uwsgi_mules.mule:run"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    tasks.RUNS.clear()
    yield
    tasks.RUNS.clear()


@pytest.mark.parametrize("seconds", [10**400, -(10**400), float("inf"), float("nan"), -1])
def test_a_delay_out_of_range_is_a_value_error(seconds: float) -> None:
    with FakeUwsgi(mules=[SERVE]):
        with pytest.raises(ValueError, match="seconds"):
            tasks.later.offload_in(seconds, 1)


def test_a_time_before_1970_runs_at_once() -> None:
    with FakeUwsgi(mules=[SERVE]) as fake:
        assert tasks.later.offload_at(datetime(1960, 1, 1, tzinfo=timezone.utc), 7) is True
        assert fake.run_pending() == 1
    assert [task_id for task_id, _, _ in tasks.runs("later")] == [7]
