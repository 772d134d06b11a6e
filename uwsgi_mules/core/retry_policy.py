"""How an offloaded task is retried, and the checks of delays and due times.

A :class:`RetryPolicy` is built once per decorated function
(``retries``, ``retry_on``, ``retry_backoff``, ``retry_backoff_max``,
``retry_jitter``) and looked up by the task's path in the mule. The delay
of the k-th retry is ``retry_backoff * 2**(k-1)`` seconds, capped by
``retry_backoff_max``; with ``retry_jitter`` a random delay between 0 and
that value (spreads retries of many tasks that failed together).

``retries`` is at most :data:`MAX_RETRIES` (1000): past about 40 retries the
delay has long reached any sensible ``retry_backoff_max``, so more retries
only make a task that never succeeds run forever; a bound of 1000 also keeps
the exponent of the delay within a float (``2.0 ** 1024`` overflows), and
the delay of any retry number saturates at ``retry_backoff_max``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: the defaults of the decorators' keyword arguments
DEFAULT_BACKOFF = 1.0
DEFAULT_BACKOFF_MAX = 600.0
#: the largest ``retries`` a policy accepts (see the module)
MAX_RETRIES = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a task that raised runs again.

    ``retries``: how many times it may run again (a crash of its mule counts
    too); ``retry_on``: the exception classes that are retried (others are
    logged once, not retried); ``retry_backoff`` / ``retry_backoff_max``:
    seconds (see the module); ``retry_jitter``: randomise the delay.
    """

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = ()
    retry_backoff: float = DEFAULT_BACKOFF
    retry_backoff_max: float = DEFAULT_BACKOFF_MAX
    retry_jitter: bool = True

    @classmethod
    def build(cls, retries: Any = 0, retry_on: Any = (), retry_backoff: Any = DEFAULT_BACKOFF,
              retry_backoff_max: Any = DEFAULT_BACKOFF_MAX, retry_jitter: Any = True) -> RetryPolicy:
        """A validated policy; ``ValueError`` names the first bad argument."""
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise ValueError(
                f"retries must be an int between 0 and {MAX_RETRIES}, got {retries!r} (more retries only make a "
                "task that never succeeds run forever; the delay stops growing at retry_backoff_max long before)"
            )
        if not isinstance(retry_on, tuple) or not all(
            isinstance(kind, type) and issubclass(kind, BaseException) for kind in retry_on
        ):
            raise ValueError(
                f"retry_on must be a tuple of exception classes, e.g. (ConnectionError, TimeoutError); got {retry_on!r}"
            )
        backoff = validate_delay(retry_backoff, "retry_backoff")
        backoff_max = validate_delay(retry_backoff_max, "retry_backoff_max")
        if not isinstance(retry_jitter, bool):
            raise ValueError(f"retry_jitter must be True or False, got {retry_jitter!r}")  # noqa: TRY004 - the documented error for any bad value
        return cls(retries, retry_on, backoff, backoff_max, retry_jitter)

    def retries_on(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one of the exceptions this policy retries."""
        return bool(self.retry_on) and isinstance(exc, self.retry_on)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the ``retry``-th retry (1 for the first);
        at most ``retry_backoff_max`` whatever ``retry`` is."""
        exponent = min(max(retry - 1, 0), MAX_RETRIES)  # 2.0 ** 1024 would raise OverflowError
        base = min(self.retry_backoff * 2.0**exponent, self.retry_backoff_max)
        if self.retry_jitter:
            return (rng or random).uniform(0.0, base)
        return base


def validate_delay(seconds: Any, name: str = "delay") -> float:
    """``seconds`` as a float; ``ValueError`` when negative, not finite or not a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {seconds!r}")  # noqa: TRY004 - the documented error for any bad value
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond a float, e.g. 10**400
        raise ValueError(
            f"{name} must be a finite number of seconds >= 0, got an int of {int(seconds).bit_length()} bits"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {seconds!r}")
    return value


def due_of(when: Any) -> float:
    """The epoch time of ``when``, a timezone-aware :class:`~datetime.datetime`
    (a naive one is refused: it would mean another time in each process)."""
    if not isinstance(when, datetime):
        raise ValueError(f"when must be a timezone-aware datetime, got {when!r}")  # noqa: TRY004 - the documented error for any bad value
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"when must be timezone-aware (e.g. datetime.now(timezone.utc) + timedelta(minutes=5)), got naive {when!r}"
        )
    return when.timestamp()


#: what :func:`decide` decided for a task that raised
RETRY = "retry"  #: it runs again after :attr:`Decision.delay` seconds
DEAD = "dead"  #: its last attempt failed: recorded as a dead task
FAILED = "failed"  #: not retried (an exception outside ``retry_on``, or no policy)


@dataclass(frozen=True)
class Decision:
    """The outcome of a failed attempt: :data:`RETRY` (with its ``delay``),
    :data:`DEAD` or :data:`FAILED`."""

    outcome: str
    delay: float = 0.0

    @property
    def retry_follows(self) -> bool:
        return self.outcome == RETRY


def decide(policy: RetryPolicy | None, exc: BaseException, attempt: int, retries: int,
           rng: random.Random | None = None) -> Decision:
    """The one retry decision, for offloads and Django tasks alike.

    ``attempt``: the number of the attempt that raised (1 for the first
    run); ``retries``: the retries the call travels with. A policy that does
    not retry ``exc`` gives :data:`FAILED`; an attempt within the retries
    :data:`RETRY` with the backoff of that retry; the last one :data:`DEAD`.
    """
    if policy is None or not policy.retries_on(exc):
        return Decision(FAILED)
    if attempt <= retries:
        return Decision(RETRY, policy.delay(attempt, rng))
    return Decision(DEAD)


#: the method a registered callable may have to be told what follows an attempt that raised
DECISION_LISTENER = "after_decision"


def tell_decision(func: Any, exc: BaseException, outcome: str) -> None:
    """Tell the registered callable ``func`` (a Django task's runner) what the
    dispatcher decided after it raised ``exc``: :data:`RETRY`, :data:`DEAD`
    or :data:`FAILED`. Callables without :data:`DECISION_LISTENER` are left alone."""
    listener = getattr(func, DECISION_LISTENER, None)
    if listener is not None:
        listener(exc, outcome)
