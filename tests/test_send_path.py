"""The per-call send path of an offload: ``Signer.sender`` (C and Python give
the same outcomes), the BLAKE2b compressions of the C speedups, and the
offload wrapper following the current backend."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from tests import sample_tasks
from tests.test_speedups import KEY, PATH, _load_speedups
from uwsgi_mules import envelope
from uwsgi_mules.errors import NotOffloadable
from uwsgi_mules.fake import FakeUwsgi


@pytest.fixture()
def speedups() -> ModuleType:
    return _load_speedups()


@pytest.fixture()
def compression(speedups: ModuleType, request: pytest.FixtureRequest) -> Iterator[str]:
    wanted = request.param
    try:
        if speedups.blake2b_impl(wanted) != wanted:
            pytest.skip(f"this CPU cannot run the {wanted} BLAKE2b compression")
        yield wanted
    finally:
        speedups.blake2b_impl("auto")


@pytest.mark.parametrize("compression", ["scalar", "avx2"], indirect=True)
@pytest.mark.parametrize("key_size", [1, 32, 64])
def test_each_blake2b_compression_equals_hashlib(speedups: ModuleType, compression: str, key_size: int) -> None:
    rng = random.Random(key_size)
    key = rng.randbytes(key_size)
    signer = speedups.Signer(key)  # the key block is compressed with the chosen code too
    for size in [*range(300), 383, 384, 385, 1000, 4096, 65536]:
        data = rng.randbytes(size)
        assert signer.tag(data) == hashlib.blake2b(data, key=key, digest_size=16).digest(), (compression, size)


def test_blake2b_impl_refuses_unknown_names(speedups: ModuleType) -> None:
    assert speedups.blake2b_impl() in ("scalar", "avx2")
    with pytest.raises(ValueError):
        speedups.blake2b_impl("sse9")


class Recorder:
    """A ``send(envelope, target)`` that records its calls and answers ``result``."""

    def __init__(self, result: Any = True, error: BaseException | None = None) -> None:
        self.result = result
        self.error = error
        self.calls: list[tuple[bytes, Any]] = []

    def __call__(self, payload: bytes, target: Any) -> Any:
        self.calls.append((payload, target))
        if self.error is not None:
            raise self.error
        return self.result


class Unpicklable:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce__(self) -> Any:
        raise self.error


def _signers(speedups: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[envelope.Signer]:
    monkeypatch.delenv(envelope.PURE_PYTHON_ENV, raising=False)  # set in the unit env
    fast = envelope.Signer(KEY)
    monkeypatch.setenv(envelope.PURE_PYTHON_ENV, "1")
    slow = envelope.Signer(KEY)
    assert fast.accelerated and not slow.accelerated
    return [fast, slow]


def _outcomes(signer: envelope.Signer) -> list[Any]:
    """What ``signer.sender`` does in every case, as comparable values."""
    sealed = signer.seal_call(PATH, (1, "x"), {"k": 2}, 3, {"retries": 1})
    out: list[Any] = []

    def run(send: Recorder, limit: int = 1000, args: tuple[Any, ...] = (1, "x")) -> None:
        sender = signer.sender(PATH, 3, {"retries": 1}, send, limit)
        try:
            result: Any = sender(args, {"k": 2})
        except BaseException as exc:  # noqa: BLE001 - compared between implementations
            result = type(exc)
        out.append((result, send.calls))

    run(Recorder(True))  # queued: True, one send of the sealed bytes
    run(Recorder(1))  # any true value counts as queued
    run(Recorder(True), limit=len(sealed) - 1)  # too large: the envelope back, nothing sent
    run(Recorder(True), limit=len(sealed))  # exactly the limit is sent
    run(Recorder(False))  # refused (full queue): the envelope back
    run(Recorder(error=ValueError("bad farm")))  # a bad target: the envelope back
    run(Recorder(error=OSError("broken socket")))  # anything else propagates
    run(Recorder(True), args=(Unpicklable(TypeError("no")),))  # pickling failed: False, nothing sent
    run(Recorder(True), args=(Unpicklable(KeyboardInterrupt()),))  # not an Exception: propagates
    out.append(sealed)
    return out


def test_sender_gives_the_same_outcomes_in_c_and_python(speedups: ModuleType,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _signers(speedups, monkeypatch)
    expected = _outcomes(slow)
    sealed = expected[-1]
    assert expected[:-1] == [
        (True, [(sealed, 3)]),
        (True, [(sealed, 3)]),
        (sealed, []),
        (True, [(sealed, 3)]),
        (sealed, [(sealed, 3)]),
        (sealed, [(sealed, 3)]),
        (OSError, [(sealed, 3)]),
        (False, []),
        (KeyboardInterrupt, []),
    ]
    assert _outcomes(fast) == expected


def test_sender_refuses_bad_arguments(speedups: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    for signer in _signers(speedups, monkeypatch):
        with pytest.raises(TypeError):
            signer.sender(PATH, 1, None, "not callable", 100)
    sender: Callable[..., Any] = speedups.Signer(KEY).sender(PATH, 1, None, Recorder(), 100)
    with pytest.raises(TypeError):
        sender((1,))
    with pytest.raises(TypeError):
        sender((1,), {}, 3)


def test_offloads_follow_the_current_backend_and_name_unpicklable_arguments() -> None:
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"]) as outer:
        assert sample_tasks.add_to_log(1)
        with FakeUwsgi(mules=["uwsgi_mules.mule:run"]) as inner:
            assert sample_tasks.add_to_log(2)
            assert sample_tasks.add_to_log(3)
            assert inner.run_pending() == 2
        assert sample_tasks.add_to_log(4)
        with pytest.raises(NotOffloadable, match="cannot be pickled"):
            sample_tasks.add_to_log(lambda: 1)
        assert outer.run_pending() == 2
