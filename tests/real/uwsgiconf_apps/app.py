"""App of the uwsgiconf-section test: ``POST /call`` and one offloaded task
that records the size of what it received."""

from __future__ import annotations

from tests.real.mule_loops.records import record
from tests.support.calls import call_application as application
from uwsgi_mules import Mule

__all__ = ["application"]


@Mule(1).offload()
def receive(data: bytes) -> None:
    record("received", size=len(data))


def send(sizes: list[int]) -> list[object]:
    """Offload one message per size; the exception class name where sending fails."""
    results: list[object] = []
    for size in sizes:
        try:
            results.append(receive(b"x" * size))
        except Exception as exc:
            results.append(type(exc).__name__)
    return results
