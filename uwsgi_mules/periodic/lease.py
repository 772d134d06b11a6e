"""Opt-in: one run per due time across several instances of one application.

Without a lease, each uWSGI instance (two hosts, or the blue and the green
side of a deploy) runs its own schedule: every due time runs once *per
instance*. With a lease, the scheduler of each instance claims
``(entry, due time)`` on a store they share before it sends the run; only
the instance whose claim succeeds sends it, the others record the due time
as run elsewhere. A claim carries a token the scheduler recorded with "T, sending": the
successor that sends T again (its predecessor died during the send) claims
with the same token and is let through. A claim is never released (it expires after
``ttl`` seconds, longer than any catch-up), so a due time runs once across
all instances even when one of them catches up later.

:class:`RedisLease` claims with ``SET key 1 NX EX ttl`` on Redis (redis-py,
installed with the ``celery`` extra or on its own). Configure it in the
process that schedules: ``UWSGIMULES_PERIODIC_LEASE=redis://host:6379/0``
in the instance's environment, or :func:`use_lease` in a task module.
When the store cannot be reached the run is not sent (logged) and the
scheduler tries again a second later: a due time is never run twice for
lack of the store, it is late instead.
"""

from __future__ import annotations

from typing import Any, Protocol

LEASE_ENV = "UWSGIMULES_PERIODIC_LEASE"
#: a claim lives this long (seconds): 30 days
DEFAULT_TTL = 30 * 86400

__all__ = ["DEFAULT_TTL", "LEASE_ENV", "Lease", "RedisLease", "configured_lease", "use_lease"]


class Lease(Protocol):
    """Claims due times on a shared store."""

    def claim(self, entry: str, due: float, token: str | None = None) -> bool:
        """True if this instance is the first to claim ``(entry, due)``, or
        claimed it before with the same ``token`` (a successor sending the
        run again); raises if the store cannot say."""

    def describe(self) -> str:
        """Where the claims are kept, for logs and ``uwsgi-mules schedule``."""


class RedisLease:
    """Claims on Redis: key ``<prefix>:<entry>:<due>``, ``SET NX EX``."""

    def __init__(self, url: str | None = None, *, client: Any = None, prefix: str = "uwsgi-mules:periodic",
                 ttl: int = DEFAULT_TTL) -> None:
        if client is None:
            if not url:
                raise ValueError("RedisLease needs a redis:// URL or a redis client")
            try:
                import redis
            except ImportError as exc:
                raise ValueError("RedisLease needs redis-py (pip install redis, or the 'celery' extra)") from exc
            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
            raise ValueError(f"ttl={ttl!r}: whole seconds, at least 1")
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.url = url or repr(client)

    def claim(self, entry: str, due: float, token: str | None = None) -> bool:
        key = f"{self.prefix}:{entry}:{due!r}"
        value = token.encode() if token else b"1"
        if self.client.set(key, value, nx=True, ex=self.ttl):
            return True
        return bool(token) and self.client.get(key) == value

    def describe(self) -> str:
        return f"Redis lease {self.url} ({self.prefix})"


_configured: list[Lease | None] = []


def use_lease(lease: Lease | None) -> None:
    """Use ``lease`` for this process's scheduler (None: no lease)."""
    _configured[:] = [lease]


def configured_lease(getenv: Any) -> Lease | None:
    """The lease set with :func:`use_lease`, else the one ``UWSGIMULES_PERIODIC_LEASE`` names, else None."""
    if _configured:
        return _configured[0]
    url = getenv(LEASE_ENV)
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{LEASE_ENV}={url!r}: a redis://, rediss:// or unix:// URL")
    lease = RedisLease(url)
    _configured[:] = [lease]
    return lease
