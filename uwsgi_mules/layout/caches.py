"""uWSGI caches (``cache2``) as the config, the fake and the results store see them."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TopologyError

#: name of the cache that holds ``submit()`` results of local mules
RESULTS_CACHE = "uwsgi-mules-results"

#: uWSGI's defaults for a ``cache2`` without ``blocksize`` / ``keysize``
DEFAULT_BLOCKSIZE = 65536
DEFAULT_KEYSIZE = 2048


@dataclass(frozen=True)
class CacheSpec:
    """One ``cache2 = name=...,items=...,blocksize=...`` entry.

    uWSGI keeps slot 0 for itself: a cache of ``items`` holds ``items - 1``
    values. Without ``bitmap`` every value takes one block, so ``blocksize``
    is the largest value (bytes) it stores.
    """

    name: str
    items: int
    blocksize: int = DEFAULT_BLOCKSIZE
    keysize: int = DEFAULT_KEYSIZE

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in ",= \n"):
            raise TopologyError(f"invalid cache name {self.name!r}")
        for key in ("items", "blocksize", "keysize"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise TopologyError(f"cache {self.name!r}: {key} must be an int >= 2, got {value!r}")

    @property
    def capacity(self) -> int:
        """How many values fit at once."""
        return self.items - 1

    def option_value(self) -> str:
        """The value of the ``cache2`` option."""
        value = f"name={self.name},items={self.items},blocksize={self.blocksize}"
        if self.keysize != DEFAULT_KEYSIZE:
            value += f",keysize={self.keysize}"
        return value

    @classmethod
    def parse(cls, value: str) -> CacheSpec:
        """Read a ``cache2`` value (other keys uWSGI knows are ignored)."""
        fields: dict[str, str] = {}
        for part in value.split(","):
            key, sep, item = part.partition("=")
            if sep:
                fields[key.strip()] = item.strip()
        name = fields.get("name")
        items = fields.get("items") or fields.get("max_items") or fields.get("maxitems")
        if not name or not items:
            raise TopologyError(f"cache2 {value!r}: needs name=... and items=...")
        try:
            return cls(
                name,
                int(items),
                int(fields.get("blocksize", DEFAULT_BLOCKSIZE)),
                int(fields.get("keysize") or fields.get("key_size") or DEFAULT_KEYSIZE),
            )
        except ValueError as exc:
            raise TopologyError(f"cache2 {value!r}: {exc}") from exc
