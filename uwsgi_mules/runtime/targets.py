"""Resolve and validate where a message goes: a mule, the shared queue or a farm."""

from __future__ import annotations

from dataclasses import dataclass

from ..envelope import WireTarget
from ..errors import UnknownFarm, UnknownMule
from ..layout.topology import DEFAULT_RECV_SIZE, MAX_FARM_NAME_BYTES, Topology


@dataclass(frozen=True)
class Target:
    """``kind`` is ``"mule"`` (``mule_id`` >= 1), ``"shared"`` or ``"farm"``."""

    kind: str
    mule_id: int = 0
    farm: str = ""

    @property
    def raw(self) -> WireTarget | None:
        """The second argument of ``uwsgi.mule_msg`` for this target (a
        :data:`~uwsgi_mules.backends.base.MuleTarget`, never a str)."""
        if self.kind == "mule":
            return self.mule_id
        if self.kind == "farm":
            return self.farm.encode()
        return None

    @property
    def wire(self) -> WireTarget:
        """How an envelope records this target: the mule id, 0 for the shared
        queue (``uwsgi.mule_msg`` takes 0, not None), the farm name as bytes."""
        raw = self.raw
        return 0 if raw is None else raw

    @classmethod
    def from_wire(cls, wire: WireTarget) -> Target:
        """The target an envelope recorded (see :attr:`wire`)."""
        return farm_target(wire) if isinstance(wire, bytes) else mule_target(int(wire))

    def describe(self) -> str:
        if self.kind == "mule":
            return f"mule {self.mule_id}"
        if self.kind == "farm":
            return f"farm {self.farm!r}"
        return "the shared mule queue"


class Addressee:
    """Something an offload can name as its destination (:class:`~uwsgi_mules.Mule`,
    :class:`~uwsgi_mules.Farm`)."""

    __slots__ = ()

    def offload_target(self) -> Target:
        """Where an offload to this goes."""
        raise NotImplementedError


def mule_target(mule_id: int) -> Target:
    if isinstance(mule_id, bool) or not isinstance(mule_id, int):
        raise UnknownMule(f"mule id must be an int, got {mule_id!r}")
    if mule_id < 0:
        raise UnknownMule(f"mule ids start at 1 (0 is the shared queue), got {mule_id}")
    return Target("mule", mule_id) if mule_id else Target("shared")


def farm_target(name: str | bytes) -> Target:
    if isinstance(name, bytes):
        name = name.decode()
    if not isinstance(name, str) or not name:
        raise UnknownFarm(f"farm name must be a non-empty str, got {name!r}")
    size = len(name.encode(errors="surrogateescape"))
    if size > MAX_FARM_NAME_BYTES:
        raise UnknownFarm(
            f"farm name of {size} bytes: uWSGI keeps only {MAX_FARM_NAME_BYTES} bytes of a farm name, "
            "so no farm can have this one"
        )
    return Target("farm", farm=name)


def validate(target: Target, topology: Topology | None, provable_mules: int | None = None) -> None:
    """Raise UnknownMule / UnknownFarm where the layout is known.

    Where it is not, a mule id is only let through when the running instance
    proves it exists (``provable_mules``: how many mules it certainly has):
    uWSGI 2.0 does not check mule ids, and a wrong one writes to whatever
    descriptor it finds (``False``) or crashes the worker.
    """
    if topology is None:
        if target.kind == "mule" and target.mule_id > (provable_mules or 0):
            raise UnknownMule(
                f"cannot prove that mule {target.mule_id} exists: the mule layout of this uWSGI is "
                f"unknown and it certainly has {provable_mules or 0} mule(s). uWSGI does not check "
                "mule ids (a wrong one can crash the worker), so it is not sent. Render the config "
                "with uwsgi_mules.config, load the uwsgi-mules plugin, or use options uwsgi-mules "
                "can read (INI files, the command line, UWSGI_* variables)"
            )
        return
    if topology.mule_count == 0:
        raise UnknownMule(f"cannot send to {target.describe()}: no mules are configured ({_where(topology)})")
    if target.kind == "mule" and target.mule_id > topology.mule_count:
        raise UnknownMule(
            f"mule {target.mule_id} does not exist: {topology.mule_count} mule(s) configured ({_where(topology)})"
        )
    if target.kind == "farm" and topology.farm(target.farm) is None:
        known = ", ".join(repr(f.name) for f in topology.farms) or "none"
        raise UnknownFarm(f"farm {target.farm!r} does not exist (configured farms: {known})")


def receive_limit(target: Target, topology: Topology | None) -> int:
    """Largest message every possible receiver of ``target`` reads whole."""
    if topology is None:
        return DEFAULT_RECV_SIZE
    if target.kind == "mule":
        receivers: tuple[int, ...] = (target.mule_id,)
    elif target.kind == "farm":
        farm = topology.farm(target.farm)
        receivers = farm.mules if farm else ()
    else:
        receivers = tuple(range(1, topology.mule_count + 1))
    limits = [_mule_recv_size(topology, m) for m in receivers] or [DEFAULT_RECV_SIZE]
    return min(min(limits), topology.max_send_size)


def size_error(size: int, target: Target, limit: int) -> str:
    return (
        f"message of {size} bytes for {target.describe()} exceeds {limit} bytes, the most its "
        "receiver reads at once (uWSGI would deliver it truncated). Send a reference "
        "(a file path, a database id) instead, or raise the receive size with "
        "set_mules_params(msg_buffer_recv=...) and mules running uwsgi_mules.mule:run"
    )


def _mule_recv_size(topology: Topology, mule_id: int) -> int:
    spec = topology.mule(mule_id)
    if spec is None or spec.kind == "signal":
        return DEFAULT_RECV_SIZE  # signal-only mules read into a fixed 64 KiB buffer
    return topology.recv_size


def _where(topology: Topology) -> str:
    return f"layout from {topology.source}" if topology.source else "see your uWSGI config"
