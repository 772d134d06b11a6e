"""The attacks of the security tests, shared by the fake and the real-uWSGI tests.

Each :class:`Attack` is a list of messages sent with raw ``uwsgi.mule_msg``
to a programmed mule (``--mule=uwsgi_mules.mule:run``) and to a signal-only
mule (``--mule`` with the hook installed by importing a decorated module).
A message marked ``sign`` is a body that the sending worker seals with the
instance key first (``current_backend().signer()``): it passes verification.
Every attack must leave no marker file, run no task, log one line per
message and keep the mule alive.
"""

from __future__ import annotations

import functools
import os
import pickle
import random
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uwsgi_mules import NotOffloadable, mule_offload
from uwsgi_mules.envelope import MAGIC, PREFIX, TAG_SIZE

TASKS = "tests.real.security_apps.tasks"
UNDECORATED = f"{TASKS}:undecorated_touch"
TOUCH_TASK = f"{TASKS}:touch_task"
EXIT_TASK = f"{TASKS}:exit_task"
INTERRUPT_TASK = f"{TASKS}:interrupt_task"
CANARY = f"{TASKS}:fuzz_canary"
TOLERATED = f"{TASKS}:fuzz_tolerated"

#: mule 1 runs uwsgi_mules.mule:run, mule 2 is signal-only
PROGRAMMED, SIGNAL_ONLY = 1, 2
MULE_KINDS = {PROGRAMMED: "programmed", SIGNAL_ONLY: "signal-only"}


@dataclass(frozen=True)
class Send:
    """One message; ``sign``: ``data`` is a body to seal with the instance key."""

    data: bytes
    sign: bool = False


# -- frames: a batch of messages in one HTTP request body ------------------------------------

_FRAME = struct.Struct("!BBI")


def encode_frames(frames: Iterable[tuple[Send, int]]) -> bytes:
    """``(message, mule id)`` pairs as one byte string."""
    return b"".join(_FRAME.pack(int(m.sign), mule, len(m.data)) + m.data for m, mule in frames)


def decode_frames(data: bytes) -> list[tuple[Send, int]]:
    frames, offset = [], 0
    while offset < len(data):
        sign, mule, size = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size
        frames.append((Send(data[offset : offset + size], bool(sign)), mule))
        offset += size
    return frames


def send_frames(frames: Sequence[tuple[Send, int]], raw_send: Callable[[bytes, int], Any],
                seal: Callable[[bytes], bytes], timeout: float = 60.0) -> dict[str, int]:
    """Send every frame with the raw ``mule_msg``; a full queue (False) is retried
    until ``timeout``. Returns how many were sent and how many sends found the queue full."""
    full = 0
    for message, mule in frames:
        data = seal(message.data) if message.sign else message.data
        deadline = time.monotonic() + timeout
        while not raw_send(data, mule):
            full += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"mule {mule} queue stayed full for {timeout}s")
            time.sleep(0.002)
    return {"sent": len(frames), "full": full}


# -- building blocks -------------------------------------------------------------------------


def body(path: object, args: object = (), kwargs: object = None, target: object = 1, meta: object = None) -> bytes:
    """The pickled body of an envelope (fields of any type)."""
    return pickle.dumps((path, args, {} if kwargs is None else kwargs, target, meta), protocol=pickle.HIGHEST_PROTOCOL)


def v1(path: str, args: tuple[Any, ...]) -> bytes:
    """The old (version 1) unsigned format: ``MAGIC + pickle((1, path, args, kwargs))``."""
    return MAGIC + pickle.dumps((1, path, args, {}), protocol=pickle.HIGHEST_PROTOCOL)


def forged(payload: bytes) -> bytes:
    """A version 2 envelope whose tag was not made with the instance key."""
    return PREFIX + b"\x5a" * TAG_SIZE + payload


class RunsOnUnpickle:
    """Unpickling it calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def touch(marker: Path) -> str:
    return f"touch {marker}"


def user_text(marker: Path) -> str:
    """Text a user could type: the envelope marker and a protocol-0 pickle of ``posix.system``."""
    return MAGIC.decode() + f"cposix\nsystem\n(V{touch(marker)}\ntR."


# -- the attacks ---------------------------------------------------------------------------------

#: a refusal of a verified envelope: the programmed mule's loop and the
#: dispatcher (signal-only mule, the fake's step mode) word it differently
REFUSED_SIGNED = (
    r"uwsgi-mules: mule {mule} (refused unregistered task|could not decode a signed \d+ bytes envelope"
    r"|refused a malformed call of|rejected a \d+ bytes message: signed envelope body)"
)
#: any line by which a mule refuses or drops a message
ANY_REFUSAL = (
    r"uwsgi-mules: mule {mule} (rejected a|refused unregistered task|could not decode a signed|refused a malformed"
    r"|received a \d+ bytes message that is not an offload)"
)
OLD_FORMAT = r"uwsgi-mules: mule {mule} rejected a \d+ bytes message: envelope of \d+ bytes has no valid version 2 header"
BAD_TAG = r"uwsgi-mules: mule {mule} rejected a \d+ bytes message: envelope of \d+ bytes has a bad signature"


@dataclass(frozen=True)
class Attack:
    """Messages sent to each mule in ``mules``; each must produce one log line
    matching ``line`` (formatted with the mule id) or, with ``task_error``,
    one reported task failure, and nothing else."""

    name: str
    before: str  #: what a mule without signed envelopes and the registry did with it
    build: Callable[[Path, str], list[Send]]  #: (marker dir, token) -> messages
    line: str
    mules: tuple[int, ...] = (PROGRAMMED, SIGNAL_ONLY)
    task_error: bool = False  #: the task runs and raises: a "raising" event and a task error per message
    forbidden: tuple[str, ...] = field(default=())  #: text that must not appear in the log ({token})


def _v1_attacks(d: Path, token: str) -> list[Send]:
    return [
        Send(v1("os:system", (touch(d / "v1-system"),))),
        Send(v1("builtins:print", ("SECURITY-PRINTED", token))),
        Send(v1(UNDECORATED, (str(d / "v1-undecorated"),))),
    ]


def _forged_attacks(d: Path, token: str) -> list[Send]:
    return [
        Send(forged(body("os:system", (touch(d / "forged-system"),)))),
        Send(forged(body("builtins:print", ("SECURITY-PRINTED", token)))),
        Send(forged(body(UNDECORATED, (str(d / "forged-undecorated"),)))),
        Send(forged(body(TOUCH_TASK, (str(d / "forged-registered"),)))),
    ]


def _reduce_attacks(d: Path, token: str) -> list[Send]:
    return [Send(forged(pickle.dumps(RunsOnUnpickle(touch(d / "reduce-forged")))))]


def _reduce_v1_attacks(d: Path, token: str) -> list[Send]:
    return [Send(MAGIC + pickle.dumps(RunsOnUnpickle(touch(d / "reduce-v1"))))]


def _user_text_attacks(d: Path, token: str) -> list[Send]:
    return [Send(user_text(d / "user-text").encode())]


def _signed_unregistered(d: Path, token: str) -> list[Send]:
    return [
        Send(body("os:system", (touch(d / "signed-system"),)), sign=True),
        Send(body("builtins:print", ("SECURITY-PRINTED", token)), sign=True),
        Send(body(UNDECORATED, (str(d / "signed-undecorated"),)), sign=True),
    ]


def _signed_wrong_types(d: Path, token: str) -> list[Send]:
    marker = str(d / "signed-wrong-types")
    return [
        Send(body(42, (marker,)), sign=True),
        Send(body(None, (marker,)), sign=True),
        Send(body([TOUCH_TASK], (marker,)), sign=True),
        Send(body(TOUCH_TASK.encode(), (marker,)), sign=True),
        Send(body(TOUCH_TASK, [marker]), sign=True),
        Send(body(TOUCH_TASK, {marker: 1}), sign=True),  # *dict would pass its keys
        Send(body(TOUCH_TASK, marker), sign=True),  # *str would pass its characters
        Send(body(TOUCH_TASK, (), [("path", marker)]), sign=True),
        Send(body(TOUCH_TASK, (), "path"), sign=True),
    ]


def _signed_undecodable(d: Path, token: str) -> list[Send]:
    return [
        Send(b"not a pickle at all", sign=True),
        Send(pickle.dumps((TOUCH_TASK, (str(d / "short"),))), sign=True),  # 2 fields, not 5
        Send(pickle.dumps(None), sign=True),
        Send(b"", sign=True),
    ]


def _exits(path: str, *args: Any) -> Callable[[Path, str], list[Send]]:
    return lambda d, token: [Send(body(path, args), sign=True)]


def _not_envelopes(d: Path, token: str) -> list[Send]:
    rng = random.Random(11)
    noise = bytes([1]) + bytes(rng.randrange(256) for _ in range(99))
    return [Send(b"hello, mule"), Send(noise)]


ATTACKS = [
    Attack("old v1 format (os:system, builtins:print, undecorated function)",
           "unpickled and called any importable callable: the file was created, print printed",
           _v1_attacks, OLD_FORMAT, forbidden=("SECURITY-PRINTED {token}",)),
    Attack("version 2 envelope with a forged tag",
           "(no tag before) would have been unpickled and run",
           _forged_attacks, BAD_TAG, forbidden=("SECURITY-PRINTED {token}",)),
    Attack("pickle whose __reduce__ calls os.system, forged tag",
           "unpickled: os.system ran while decoding",
           _reduce_attacks, BAD_TAG),
    Attack("pickle whose __reduce__ calls os.system, old format",
           "unpickled: os.system ran while decoding",
           _reduce_v1_attacks, OLD_FORMAT),
    Attack("user text starting with the marker, sent raw",
           "a forwarded string that started with the marker was unpickled: posix.system ran",
           _user_text_attacks, OLD_FORMAT),
    Attack("signed envelope naming an unregistered path (os:system, builtins:print, undecorated function)",
           "any importable callable ran",
           _signed_unregistered,
           r"uwsgi-mules: mule {mule} refused unregistered task '(os:system|builtins:print|"
           + UNDECORATED.replace(".", r"\.") + ")'",
           forbidden=("SECURITY-PRINTED {token}",)),
    Attack("signed envelope with a path that is not a str, args not a tuple, kwargs not a dict",
           "fields were used as they came (a str args was splatted into characters)",
           _signed_wrong_types, REFUSED_SIGNED),
    Attack("signed envelope whose body does not decode",
           "the exception escaped the mule loop: the mule died and was respawned",
           _signed_undecodable, REFUSED_SIGNED),
    Attack("signed task raising SystemExit",
           "SystemExit ended the mule (respawned with a new pid)",
           _exits(EXIT_TASK, 3), "", task_error=True),
    Attack("signed task raising KeyboardInterrupt",
           "KeyboardInterrupt ended the mule (respawned with a new pid)",
           _exits(INTERRUPT_TASK), "", task_error=True),
    Attack("bytes that are not an envelope, no application hook",
           "signal-only mule: uWSGI's '*** mule N received a N bytes message ***'; programmed: dropped silently",
           _not_envelopes, r"uwsgi-mules: mule {mule} received a (11|100) bytes message that is not an offload"),
    Attack("empty message to a signal-only mule, no application hook",
           "uWSGI's '*** mule N received a 0 bytes message ***'",
           lambda d, token: [Send(b"")],
           r"uwsgi-mules: mule {mule} received a 0 bytes message that is not an offload", mules=(SIGNAL_ONLY,)),
]

ATTACK_IDS = ["v1", "forged-tag", "reduce-forged", "reduce-v1", "user-text", "signed-unregistered",
              "signed-wrong-types", "signed-undecodable", "signed-SystemExit", "signed-KeyboardInterrupt",
              "not-envelope", "empty"]


# -- decoration-time refusals --------------------------------------------------------------------


class Service:
    def method(self, item_id: int) -> None:
        """A bound method: a mule cannot rebuild ``self``."""

    @classmethod
    def factory(cls, item_id: int) -> None:
        """A classmethod is bound too."""

    def __call__(self, item_id: int) -> None:
        """An instance is callable but has no import path."""


def decoration_refusals() -> dict[str, str]:
    """Decorate functions a mule could not import; ``NotOffloadable`` or ``accepted`` for each."""
    main_namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def main_function(item_id):\n    return item_id\n", main_namespace)  # noqa: S102 - a __main__ function

    def nested(item_id: int) -> None:
        """Defined inside a function."""

    cases: dict[str, Any] = {
        "function of __main__": main_namespace["main_function"],
        "bound method": Service().method,
        "bound classmethod": Service.factory,
        "lambda": lambda item_id: item_id,
        "nested function": nested,
        "functools.partial": functools.partial(print, "x"),
        "callable instance": Service(),
    }
    outcome = {}
    for name, func in cases.items():
        try:
            mule_offload(1)(func)
        except NotOffloadable:
            outcome[name] = "NotOffloadable"
        else:
            outcome[name] = "accepted"
    return outcome


# -- fuzzing -----------------------------------------------------------------------------------------

#: values of the wrong type for every field of a signed body
WRONG_VALUES: list[Any] = [
    None, 0, -1, 2**70, 1.5, True, b"bytes", "", "text", [], [1, 2], (), (1,), {}, {"k": 1}, {1: 2},
    frozenset({1}), complex(1, 2), ValueError("x"), ((CANARY,),),
]


def genuine_bodies() -> list[bytes]:
    """Bodies of correct calls of the canary (sealed, then mutated: a mutation must never run)."""
    return [
        body(CANARY, ()),
        body(CANARY, ("x",)),
        body(CANARY, (1, 2, 3), {"key": "value"}),
        body(CANARY, ("y" * 300,), meta={"retries": 2}),
    ]


def _flip(data: bytes, position: int, bit: int) -> bytes:
    mutated = bytearray(data)
    mutated[position] ^= 1 << bit
    return bytes(mutated)


def fuzz_messages(rng: random.Random, genuine: Sequence[bytes], count: int) -> list[tuple[str, Send]]:
    """At least ``count`` (category, message) pairs: mutations of the sealed
    ``genuine`` envelopes (bit flips anywhere including every header bit,
    truncations at every length, appended bytes), random bytes (some starting
    like an envelope), and signed bodies with a wrong type in each field. None
    may run the canary; ``tolerated`` ones (wrong ``target``/``meta`` type,
    fields a call does not use) may run :func:`tasks.fuzz_tolerated`."""
    out: list[tuple[str, Send]] = []
    header = len(PREFIX) + TAG_SIZE
    for envelope in genuine:  # every bit of the header, once per envelope
        out += [("bit flip", Send(_flip(envelope, p, b))) for p in range(header) for b in range(8)]
        out += [("truncated", Send(envelope[:n])) for n in range(len(envelope))]
    for value in WRONG_VALUES:
        out.append(("signed path type", Send(body(value, ("x",)), sign=True)))
        if not isinstance(value, tuple):
            out.append(("signed args type", Send(body(CANARY, value), sign=True)))
        if not isinstance(value, dict) or value == {1: 2}:  # {1: 2}: not keywords, the call fails
            raw = pickle.dumps((CANARY, (), value, 1, None), protocol=pickle.HIGHEST_PROTOCOL)
            out.append(("signed kwargs type", Send(raw, sign=True)))
        out.append(("signed body type", Send(pickle.dumps(value), sign=True)))
        out.append(("signed tolerated", Send(body(TOLERATED, (len(out),), target=value), sign=True)))
        out.append(("signed tolerated", Send(body(TOLERATED, (len(out),), meta=value), sign=True)))
    for fields in ((CANARY,), (CANARY, ()), (CANARY, (), {}, 1), (CANARY, (), {}, 1, None, "extra")):
        out.append(("signed body length", Send(pickle.dumps(fields), sign=True)))
    out.append(("signed body garbage", Send(bytes(rng.randrange(256) for _ in range(64)), sign=True)))
    while len(out) < count:
        choice = rng.random()
        envelope = rng.choice(genuine)
        if choice < 0.35:
            position = rng.randrange(len(envelope))
            flipped = _flip(envelope, position, rng.randrange(8))
            if rng.random() < 0.3:  # several flips
                for _ in range(rng.randrange(1, 6)):
                    flipped = _flip(flipped, rng.randrange(len(flipped)), rng.randrange(8))
            out.append(("bit flip", Send(flipped)))
        elif choice < 0.45:
            out.append(("truncated", Send(envelope[: rng.randrange(len(envelope))])))
        elif choice < 0.55:
            out.append(("extended", Send(envelope + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))))))
        elif choice < 0.65:
            tag = bytes(rng.randrange(256) for _ in range(TAG_SIZE))
            out.append(("random tag", Send(envelope[: len(PREFIX)] + tag + envelope[header:])))
        elif choice < 0.75:
            swapped = bytearray(envelope)  # a byte of the body replaced
            swapped[rng.randrange(header, len(swapped))] = rng.randrange(256)
            if bytes(swapped) != envelope:
                out.append(("body byte", Send(bytes(swapped))))
        else:
            size = rng.randrange(0, 400)
            noise = bytes(rng.randrange(256) for _ in range(size))
            start = rng.choice([b"", MAGIC, PREFIX, PREFIX + envelope[len(PREFIX) : header]])
            out.append(("random bytes", Send(start + noise)))
    return out
