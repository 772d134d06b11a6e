"""Offloads into the mules that run ``@mulemsg`` / ``@farm`` loops
(uwsgi-mules only: the runtime runs them, the loop function never sees them)."""

from __future__ import annotations

from uwsgi_mules import Farm, Mule

from .records import record


@Mule(5).offload()
def offloaded_to_mule_5(tag: str) -> None:
    record("offloaded", tag=tag)


@Farm("f").offload()
def offloaded_to_farm_f(tag: str) -> None:
    record("offloaded", tag=tag)


def send_offloads() -> list[object]:
    return [offloaded_to_mule_5("o5"), offloaded_to_farm_f("of")]
