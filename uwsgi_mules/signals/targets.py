"""Where a signal's handler runs: typed uWSGI signal targets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import UnknownSignalTarget

_NAMED = {"worker": "worker", "workers": "workers", "active-workers": "active-workers", "mule": "mule",
          "mules": "mules", "spooler": "spooler", "": "worker", "worker0": "worker", "mule0": "mule"}


@dataclass(frozen=True)
class SignalTarget:
    """A ``register_signal`` target.

    ``kind`` is one of ``worker`` (first available worker, or worker
    ``number``), ``workers``, ``active-workers``, ``mule`` (first available
    mule, or mule ``number``), ``mules``, ``farm`` and ``spooler``.
    """

    kind: str
    number: int = 0
    farm_name: str = ""

    @classmethod
    def worker(cls, number: int | None = None) -> SignalTarget:
        """The first available worker, or worker ``number`` (1-based)."""
        return cls("worker", _positive(number, "worker"))

    @classmethod
    def workers(cls) -> SignalTarget:
        """Every worker (broadcast)."""
        return cls("workers")

    @classmethod
    def active_workers(cls) -> SignalTarget:
        """Every worker that is not cheaped or suspended (broadcast)."""
        return cls("active-workers")

    @classmethod
    def mule(cls, number: int | None = None) -> SignalTarget:
        """The first available mule, or mule ``number`` (1-based)."""
        return cls("mule", _positive(number, "mule"))

    @classmethod
    def mules(cls) -> SignalTarget:
        """Every mule (broadcast)."""
        return cls("mules")

    @classmethod
    def farm(cls, name: str) -> SignalTarget:
        """One mule of farm ``name`` (read by signal-only mules only)."""
        if isinstance(name, bytes):
            name = name.decode()
        if not isinstance(name, str) or not name or len(("farm_" + name).encode()) > 63:
            raise UnknownSignalTarget(f"farm name must be a non-empty str of at most 58 bytes, got {name!r}")
        return cls("farm", farm_name=name)

    @classmethod
    def spooler(cls) -> SignalTarget:
        """The spooler."""
        return cls("spooler")

    @classmethod
    def parse(cls, text: str) -> SignalTarget:
        """A raw uWSGI target string, validated (no silent fall-through)."""
        if not isinstance(text, str):
            raise UnknownSignalTarget(f"a signal target must be a str, got {text!r}")
        if text in _NAMED:
            return cls(_NAMED[text])
        if text.startswith("farm_"):
            return cls.farm(text[5:])
        match = re.fullmatch(r"(worker|mule)([1-9][0-9]*)", text)
        if match:
            return cls(match.group(1), int(match.group(2)))
        raise UnknownSignalTarget(
            f"unknown signal target {text!r}: use worker, workerN, workers, active-workers, "
            "mule, muleN, mules, farm_NAME or spooler (or a SignalTarget)"
        )

    @classmethod
    def coerce(cls, target: Any) -> SignalTarget:
        """A SignalTarget from a SignalTarget, a raw string, a Mule or a Farm."""
        if isinstance(target, SignalTarget):
            return target
        if target is None:
            return cls.worker()
        if isinstance(target, str):
            return cls.parse(target)
        kind = type(target).__name__
        if kind == "Mule" and hasattr(target, "id"):
            return cls.mule(target.id)
        if kind == "Farm" and hasattr(target, "name"):
            return cls.farm(target.name)
        raise UnknownSignalTarget(f"not a signal target: {target!r}")

    @property
    def raw(self) -> str:
        """The string uWSGI's ``register_signal`` expects."""
        if self.kind == "farm":
            return f"farm_{self.farm_name}"
        if self.kind in ("worker", "mule") and self.number:
            return f"{self.kind}{self.number}"
        return self.kind

    @property
    def broadcast(self) -> bool:
        """True when every process of the kind runs the handler."""
        return self.kind in ("workers", "active-workers", "mules")

    def describe(self) -> str:
        if self.kind == "farm":
            return f"one mule of farm {self.farm_name!r}"
        if self.kind in ("worker", "mule"):
            return f"{self.kind} {self.number}" if self.number else f"the first available {self.kind}"
        return {"workers": "every worker", "active-workers": "every active worker",
                "mules": "every mule", "spooler": "the spooler"}[self.kind]

    def __str__(self) -> str:
        return self.raw


def _positive(number: int | None, kind: str) -> int:
    if number is None:
        return 0
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise UnknownSignalTarget(f"{kind} numbers start at 1, got {number!r}")
    return number


WORKER = SignalTarget.worker()
WORKERS = SignalTarget.workers()
ACTIVE_WORKERS = SignalTarget.active_workers()
MULE = SignalTarget.mule()
MULES = SignalTarget.mules()
SPOOLER = SignalTarget.spooler()
