# What the compiled uwsgi_mules._speedups (_speedups.c and _queue_writer.h)
# exports; envelope.py and backends/real.py hold the Python twins.

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias, final

from typing_extensions import Buffer

PREFIX: bytes
TAG_SIZE: int
RECORD_HEADER: int
#: ``open``'s answer for a message that is not an envelope
NOT_OURS: int
#: ``open``'s answer for an envelope whose tag does not verify
BAD_TAG: int
#: ``serve``'s reasons for returning (the ``why`` of its result)
SERVE_BATCH: int
SERVE_IDLE: int
SERVE_STOP: int
SERVE_SLOW: int
SERVE_FAILED: int

#: ``(func, path, args, kwargs, target, meta)``: func is None unless registered and well formed
_Opened: TypeAlias = tuple[Callable[..., Any] | None, str, tuple[Any, ...], dict[str, Any], int | bytes, dict[str, Any] | None]

class _StopFlag(Protocol):
    # what serve() reads before each message: a true signum ends the loop

    @property
    def signum(self) -> object: ...

class _CallSender(Protocol):
    # one offloaded function's send path (Signer.sender): True once queued,
    # the unsent envelope (too large, queue full, refused), False when pickling failed
    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any], /) -> bool | bytes: ...

def blake2b_impl(name: str | None = None, /) -> str: ...

@final
class Signer:
    # signs and opens envelopes with one instance key (keyed BLAKE2b, 16-byte tags)

    def __init__(self, key: bytes) -> None: ...
    def tag(self, data: Buffer, /) -> bytes: ...
    def seal(self, body: Buffer, /) -> bytes: ...
    def seal_call(
        self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any], target: int | bytes,
        meta: dict[str, Any] | None, /,
    ) -> bytes: ...
    def verified_body(self, message: Buffer, /) -> bytes | None: ...
    def open(
        self, message: Buffer, tasks: dict[str, Callable[..., Any]], record: Buffer | None, /
    ) -> int | _Opened: ...
    def serve(
        self,
        get: Callable[..., bytes | None],
        first_args: tuple[Any, ...],
        args: tuple[Any, ...],
        tasks: dict[str, Callable[..., Any]],
        record: Buffer | None,
        stop: _StopFlag,
        batch: int,
        /,
    ) -> tuple[int, int, int, Any]: ...
    def sender(
        self, path: str, target: int | bytes, meta: dict[str, Any] | None,
        send: Callable[[bytes, int | bytes], bool], limit: int, /,
    ) -> _CallSender: ...

@final
class QueueWriter:
    # writes messages straight to a queue's socket; reports sends by calling count(n)

    def __init__(self, fd: int, count: Callable[[int], object], batch: int = 64) -> None: ...
    def send(self, message: Buffer, target: object = None, /) -> bool: ...
    def flush(self) -> None: ...
    @property
    def unreported(self) -> int: ...
    @property
    def fd(self) -> int: ...
