from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from uwsgi_mules import Mule
from uwsgi_mules.periodic import forget_entries, periodic
from uwsgi_mules.core.registry import ORIGINAL_ATTR

from . import tasks


@pytest.fixture
def schedule() -> Iterator[Callable[..., Any]]:
    """``schedule(func, offload={...}, **periodic_kwargs)``: offload ``func``
    to mule 1 (with the ``offload`` options) and declare it periodic for this
    test only."""
    declared: list[str] = []

    def declare(func: Callable[..., Any], **kwargs: Any) -> Any:
        offloaded = Mule(1).offload(**kwargs.pop("offload", {}))(getattr(func, ORIGINAL_ATTR, func))
        periodic(**kwargs)(offloaded)
        declared.append(offloaded.offloading.path)
        return offloaded

    tasks.RUNS.clear()
    yield declare
    forget_entries(declared)
    tasks.RUNS.clear()
