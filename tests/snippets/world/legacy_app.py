"""A module written for uWSGI: ``import uwsgi`` at its top, uwsgidecorators."""

import uwsgi  # noqa: F401 - the point: it needs uwsgi importable
from uwsgidecorators import mulefunc, timer

TICKS: list[int] = []


@timer(30)
def tick(signum: int) -> None:
    TICKS.append(signum)


@mulefunc(1)
def work(item: str) -> None: ...


def offload_something() -> None:
    work("item")
