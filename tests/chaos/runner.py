"""Run many schedules, print each one's figures, and fail with the seeds
that broke an invariant and the command line that reproduces each."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .invariants import Report, check
from .options import ChaosOptions
from .schedule import Schedule


def seeds(options: ChaosOptions, default_count: int, offset: int = 0) -> Iterator[int]:
    """The seeds to run: ``--chaos-seed``, else ``--chaos-schedules`` (or
    ``default_count``) seeds from the run's base seed plus ``offset``, else
    as many as fit in ``--chaos-minutes``."""
    if options.seed is not None:
        yield options.seed
        return
    base = options.base_seed + offset
    minutes = options.minutes
    deadline = time.monotonic() + minutes * 60
    count = options.schedules or default_count
    index = 0
    while (minutes and time.monotonic() < deadline) or (not minutes and index < count):
        yield base + index
        index += 1


def run_schedules(request: pytest.FixtureRequest, seed_list: Iterator[int], make: Callable[[int], Schedule],
                  drive: Callable[[Schedule, Path], object], workdir: Path) -> list[Report]:
    """Generate, drive and check every schedule; fail listing each failing seed.
    The totals go to the test's ``user_properties`` (``chaos``), which the
    terminal summary of conftest.py prints."""
    node = request.node.nodeid
    reports, failures = [], []
    for seed in seed_list:
        schedule = make(seed)
        directory = workdir / f"seed{seed}"
        directory.mkdir(parents=True)
        report = check(schedule.calls(), drive(schedule, directory))  # type: ignore[arg-type]
        reports.append(report)
        print(f"\n{schedule.describe()}\n  {report.figures()}")
        if report.violations:
            failures.append(f"{schedule.describe()}\n  {report.figures()}\n  " + "\n  ".join(report.violations[:10])
                            + f"\n  reproduce: pytest -p no:cacheprovider '{node}' --chaos-seed {seed}")
    total_calls = sum(r.sent for r in reports)
    summary = (f"{node}: {len(reports)} schedule(s), {total_calls} calls, {len(failures)} failing "
               f"({sum(len(r.violations) for r in reports)} violation(s))")
    print(f"\n{summary}")
    request.node.user_properties.append(("chaos", summary))
    if failures:
        pytest.fail("invariants broken:\n" + "\n".join(failures), pytrace=False)
    return reports
