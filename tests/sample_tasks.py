"""Offloaded functions used by the unit tests."""

from __future__ import annotations

from typing import Any

from uwsgi_mules import Farm, Mule, mule_offload

LOG: list[tuple[str, Any]] = []


@Mule(1).offload()
def add_to_log(item: str, *, times: int = 1) -> None:
    """Append to LOG (runs in a mule)."""
    for _ in range(times):
        LOG.append((item, Mule.get_current_id()))


@Farm("busy").offload()
def on_farm(item: str) -> None:
    LOG.append((item, Mule.get_current_id()))


@mule_offload(2)
def same_name_other_module(item: str) -> None:
    LOG.append(("other send", Mule.get_current_id()))


@Mule(1).offload()
def send(item: str) -> None:
    LOG.append(("sample_tasks.send", item))


@Mule(1).offload()
def mutate(data: dict[str, list[int]]) -> None:
    data["nested"].append(3)
    LOG.append(("mutated", data))


@mule_offload(2)
def on_mule2(number: int) -> None:
    LOG.append(("mule2", number))


@mule_offload(1)
def on_mule1_quiet(number: int) -> None:
    pass


@mule_offload(1)
def boom() -> None:
    1 / 0  # noqa: B018


@mule_offload(3)
def mail(item: str) -> None:
    LOG.append(("mail", item))


def plain(*args: Any, **kwargs: Any) -> None:
    LOG.append(("plain", args))


class Namespace:
    @staticmethod
    def method() -> None: ...
