"""Cron due times against a second, independent implementation: croniter
(test-only dependency) over many random expressions and start times, and
fixed vectors in a timezone with daylight saving changes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from uwsgi_mules.periodic import Schedule

croniter = pytest.importorskip("croniter", reason="croniter (the reference) is installed in the tox envs").croniter

UTC = timezone.utc
RANGES = [(0, 59), (0, 23), (1, 28), (1, 12), (0, 6)]


def _field(rng: random.Random, low: int, high: int, star_only: bool = False) -> str:
    kind = "*" if star_only else rng.choice(["*", "n", "range", "list", "step", "rangestep"])
    if kind == "*":
        return "*"
    if kind == "n":
        return str(rng.randint(low, high))
    if kind == "range":  # a-b with a < b: croniter 7 reads "6-6" in the weekday field as other days
        a = rng.randint(low, high - 1)
        return f"{a}-{rng.randint(a + 1, high)}"
    if kind == "list":
        return ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), rng.randint(2, 4))))
    if kind == "step":
        return f"*/{rng.randint(2, max(2, (high - low) // 2))}"
    a = rng.randint(low, high - 1)
    return f"{a}-{rng.randint(a + 1, high)}/{rng.randint(2, 5)}"


def random_expression(rng: random.Random) -> str:
    """Day of month and day of week are never both restricted: there, cron
    dialects differ (OR in Vixie cron, a star-prefix rule in Debian's)."""
    restrict_dom = rng.random() < 0.5
    fields = [
        _field(rng, *RANGES[0]), _field(rng, *RANGES[1]),
        _field(rng, *RANGES[2], star_only=not restrict_dom), _field(rng, *RANGES[3]),
        _field(rng, *RANGES[4], star_only=restrict_dom),
    ]
    return " ".join(fields)


def test_500_random_expressions_agree_with_croniter_in_utc() -> None:
    rng = random.Random(28)
    compared = 0
    for _ in range(500):
        expression = random_expression(rng)
        start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        ours = Schedule.build(cron=expression).due_after(start.timestamp())
        reference = croniter(expression, start)
        for _ in range(10):
            expected = reference.get_next(float)
            assert next(ours) == expected, (expression, start)
            compared += 1
    print(f"\n{compared} due times of 500 random expressions: all equal to croniter's")


def test_latest_at_or_before_agrees_with_croniter() -> None:
    rng = random.Random(280)
    for _ in range(200):
        expression = random_expression(rng)
        now = datetime(2025, 6, 1, tzinfo=UTC).timestamp() + rng.randint(0, 365 * 86400) + rng.random()
        latest = Schedule.build(cron=expression).latest_at_or_before(now)
        assert latest == croniter(expression, now).get_prev(float), expression


@pytest.mark.parametrize(("expression", "start", "expected"), [
    # spring forward in Paris (2026-03-29 02:00 -> 03:00): the skipped 02:30 runs once at 03:00
    ("30 2 * * *", "2026-03-28T12:00:00+01:00", ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    # fall back (2026-10-25 03:00 -> 02:00): a fixed time in the repeated hour runs once
    ("30 2 * * *", "2026-10-24T12:00:00+02:00", ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    # every 30 minutes runs at every real half hour, both passes of the repeated hour included
    ("*/30 2 * * *", "2026-10-25T01:59:00+02:00",
     ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00",
      "2026-10-25T02:30:00+01:00", "2026-10-26T02:00:00+01:00"]),
])
def test_daylight_saving_vectors_in_paris(expression: str, start: str, expected: list[str]) -> None:
    due = Schedule.build(cron=expression, tz="Europe/Paris").due_after(datetime.fromisoformat(start).timestamp())
    got = [next(due) for _ in expected]
    assert got == [datetime.fromisoformat(e).timestamp() for e in expected]
