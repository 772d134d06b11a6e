"""Plain functions the periodic tests offload and schedule (in fixtures, so
that no other test's ``fake.advance()`` sees their entries)."""

from __future__ import annotations

from datetime import datetime

#: every run: (task, due time or None)
RUNS: list[tuple[str, datetime | None]] = []


def cleanup() -> None:
    RUNS.append(("cleanup", None))


def stamped(due: datetime) -> None:
    RUNS.append(("stamped", due))


def nightly(due: datetime) -> None:
    RUNS.append(("nightly", due))


def half_hourly(due: datetime) -> None:
    RUNS.append(("half_hourly", due))


#: how many more runs of flaky() raise ValueError
FAILURES: list[int] = [0]


def flaky(due: datetime) -> None:
    RUNS.append(("flaky attempt", due))
    if FAILURES[0] > 0:
        FAILURES[0] -= 1
        raise ValueError("flaky failed")
    RUNS.append(("flaky", due))


def not_offloaded() -> None:
    """Never offloaded: @periodic on it must raise."""
