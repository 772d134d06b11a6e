"""uWSGI's caching framework (``cache2``) for the fake, with uWSGI 2.0's
return values: ``cache_set`` returns True or None (refused: key exists,
value larger than a block, cache full, unknown cache), ``cache_get`` bytes
or None, ``cache_keys`` raises ValueError for an unknown cache.

Expired values disappear at their expiry time on the fake's clock (real
uWSGI's master sweeps them every ``cache-expire-freq`` seconds, 3 by default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..layout.caches import CacheSpec


@dataclass
class _Cache:
    spec: CacheSpec
    values: dict[bytes, tuple[bytes, float]] = field(default_factory=dict)  # key -> (value, expires at; 0: never)
    full: int = 0


class FakeCaches:
    """Every cache of one fake instance, shared by all its processes."""

    def __init__(self, specs: Iterable[CacheSpec], clock: Callable[[], float]) -> None:
        self._caches: dict[str, _Cache] = {}
        self._default: _Cache | None = None
        for spec in specs:
            cache = _Cache(spec)
            self._caches[spec.name] = cache
            self._default = self._default or cache
        self._clock = clock
        self._lock = threading.Lock()
        #: lines the real cache would log (``*** DANGER cache "x" is FULL !!! ***``)
        self.log: Callable[[str], None] = lambda line: None

    def specs(self) -> list[CacheSpec]:
        return [c.spec for c in self._caches.values()]

    def _find(self, name: str | None) -> _Cache | None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"cache name must be str, not {type(name).__name__}")
        if not name:
            return self._default
        return self._caches.get(name)

    def _live(self, name: str | None) -> _Cache | None:
        """The cache ``name`` without its expired values (under the lock), or None."""
        cache = self._find(name)
        if cache is not None:
            self._expire(cache)
        return cache

    def _expire(self, cache: _Cache) -> None:
        now = self._clock()
        dead = [k for k, (_, at) in cache.values.items() if at and at <= now]
        for key in dead:
            del cache.values[key]

    def set(self, key: bytes, value: bytes, expires: int, name: str | None, *, update: bool) -> bool | None:
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise TypeError(f"'{type(expires).__name__}' object cannot be interpreted as an integer")
        with self._lock:
            cache = self._find(name)
            if cache is None or not key or not value:
                return None
            spec = cache.spec
            if len(key) > spec.keysize or len(value) > spec.blocksize:
                return None
            self._expire(cache)
            if key in cache.values and not update:
                return None
            if key not in cache.values and len(cache.values) >= spec.capacity:
                cache.full += 1
                self.log(f'*** DANGER cache "{spec.name}" is FULL !!! ***')
                return None
            cache.values[key] = (value, self._clock() + expires if expires > 0 else 0.0)
            return True

    def get(self, key: bytes, name: str | None) -> bytes | None:
        with self._lock:
            cache = self._live(name)
            found = cache.values.get(key) if cache is not None else None
            return found[0] if found else None

    def delete(self, key: bytes, name: str | None) -> bool | None:
        with self._lock:
            cache = self._live(name)
            return True if cache is not None and cache.values.pop(key, None) is not None else None

    def keys(self, name: str | None) -> list[bytes]:
        with self._lock:
            cache = self._live(name)
            if cache is None:
                raise ValueError("no local uWSGI cache available")
            return list(cache.values)

    def clear(self, name: str | None) -> bool | None:
        with self._lock:
            cache = self._find(name)
            if cache is None:
                return None
            cache.values.clear()
            return True


def as_bytes(value: object, what: str) -> bytes:
    """uWSGI parses messages, cache keys and values with ``s#``: str (UTF-8) or a bytes-like object."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or read-only bytes-like object, not {type(value).__name__}")
