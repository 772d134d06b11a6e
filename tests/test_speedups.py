"""The C speedups (``uwsgi_mules._speedups``) against the Python implementation.

Both must give the same bytes and the same outcomes for every message: the
tags equal hashlib's keyed BLAKE2b, ``open`` agrees on fuzzed envelopes
(including what it writes to the in-flight record), ``serve`` runs what the
Python loop runs and hands back the rest, and the C queue writer counts and
refuses as the Python one does. The tox environments that run real uWSGI
set ``UWSGIMULES_REQUIRE_SPEEDUPS=1``: there a missing build fails here.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import pickle
import random
import socket
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from uwsgi_mules import envelope
from uwsgi_mules.backends.real import QueueWriter
from uwsgi_mules.mule.delivery.inflight import HEADER_SIZE as RECORD_HEADER
from uwsgi_mules.mule.delivery.inflight import InflightRecord

KEY = bytes(range(32))
PATH = "tests.sample_tasks:add"


def _load_speedups() -> ModuleType:
    try:
        return importlib.import_module("uwsgi_mules._speedups")
    except ImportError as exc:
        if os.environ.get("UWSGIMULES_REQUIRE_SPEEDUPS"):
            pytest.fail(f"the C speedups are required here but not built: {exc}")
        pytest.skip(f"the C speedups are not built in this environment ({exc})")


@pytest.fixture()
def speedups() -> ModuleType:
    return _load_speedups()


@pytest.fixture()
def python_signer(monkeypatch: pytest.MonkeyPatch) -> envelope.Signer:
    monkeypatch.setenv(envelope.PURE_PYTHON_ENV, "1")
    signer = envelope.Signer(KEY)
    monkeypatch.delenv(envelope.PURE_PYTHON_ENV)
    assert not signer.accelerated and signer.serve is None
    return signer


def test_pure_python_switch(monkeypatch: pytest.MonkeyPatch, speedups: ModuleType) -> None:
    monkeypatch.delenv(envelope.PURE_PYTHON_ENV, raising=False)
    assert envelope.speedups() is speedups
    assert envelope.Signer(KEY).accelerated
    monkeypatch.setenv(envelope.PURE_PYTHON_ENV, "1")
    assert envelope.speedups() is None
    assert not envelope.Signer(KEY).accelerated


def test_constants_match_the_python_layout(speedups: ModuleType) -> None:
    assert speedups.PREFIX == envelope.PREFIX
    assert speedups.TAG_SIZE == envelope.TAG_SIZE
    assert speedups.RECORD_HEADER == RECORD_HEADER
    assert (speedups.NOT_OURS, speedups.BAD_TAG) == (envelope.NOT_OURS, envelope.BAD_TAG)
    assert (speedups.SERVE_BATCH, speedups.SERVE_IDLE, speedups.SERVE_STOP, speedups.SERVE_SLOW,
            speedups.SERVE_FAILED) == (envelope.SERVE_BATCH, envelope.SERVE_IDLE, envelope.SERVE_STOP,
                                       envelope.SERVE_SLOW, envelope.SERVE_FAILED)


@pytest.mark.parametrize("key_size", [1, 16, 32, 64])
def test_tags_equal_hashlib_keyed_blake2b(speedups: ModuleType, key_size: int) -> None:
    rng = random.Random(key_size)
    key = rng.randbytes(key_size)
    signer = speedups.Signer(key)
    for size in [*range(0, 300), 383, 384, 385, 1000, 4096, 65536]:
        data = rng.randbytes(size)
        assert signer.tag(data) == hashlib.blake2b(data, key=key, digest_size=16).digest(), size
    assert signer.tag(memoryview(b"abc")) == hashlib.blake2b(b"abc", key=key, digest_size=16).digest()


def test_bad_keys_are_refused(speedups: ModuleType) -> None:
    for key in (b"", b"k" * 65):
        with pytest.raises(ValueError):
            speedups.Signer(key)


def test_seal_and_seal_call_give_the_python_bytes(speedups: ModuleType, python_signer: envelope.Signer) -> None:
    fast = speedups.Signer(KEY)
    calls: list[tuple[Any, ...]] = [
        (PATH, (1, 2), {}, 1, None),
        (PATH, (), {"x": [1, 2]}, b"farm", {"retries": 2}),
        ("m:f", ("é" * 500,), {}, 0, None),
    ]
    for call in calls:
        assert fast.seal_call(*call) == python_signer.seal_call(*call)
        body = pickle.dumps(call, envelope.PROTOCOL)
        assert fast.seal(body) == python_signer.seal(body) == envelope.encode(python_signer, *call)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises
        fast.seal_call(PATH, (lambda: 1,), {}, 1, None)


def _messages(signer: envelope.Signer, rng: random.Random) -> list[bytes]:
    """Genuine, malformed and forged envelopes, plus their mutations."""
    bodies: list[Any] = [
        (PATH, (1, 2), {}, 1, None),
        (PATH, (1,), {"b": 2}, 1, {"result": "k"}),
        ("tests.sample_tasks:unknown", (), {}, 1, None),
        (PATH, [1, 2], {}, 1, None),
        (PATH, (1, 2), [], 1, None),
        (PATH, (1, 2), {}, 1, "meta"),
        (7, (1, 2), {}, 1, None),
        (PATH, (1, 2), {}),
        [PATH, (1, 2), {}, 1, None],
        "just a string",
    ]
    genuine = [signer.seal(pickle.dumps(body, envelope.PROTOCOL)) for body in bodies]
    genuine.append(signer.seal(b"not a pickle"))
    messages = list(genuine)
    messages += [b"", b"x", envelope.MAGIC, envelope.PREFIX, envelope.PREFIX + b"short", b"plain message"]
    for _ in range(400):
        message = bytearray(rng.choice(genuine))
        how = rng.randrange(3)
        if how == 0:
            del message[rng.randrange(len(message)) :]
        elif how == 1:
            message[rng.randrange(len(message))] ^= 1 << rng.randrange(8)
        else:
            message[envelope.HEADER_SIZE :] = rng.randbytes(rng.randrange(1, 60))
        messages.append(bytes(message))
    return messages


def _outcome(open_: Any, message: bytes, tasks: dict[str, Any], record: bytearray) -> Any:
    try:
        return open_(message, tasks, record)
    except Exception as exc:  # noqa: BLE001 - compared across implementations
        return ("raised", type(exc))


def test_open_agrees_with_python_on_fuzzed_messages(speedups: ModuleType, python_signer: envelope.Signer) -> None:
    fast = speedups.Signer(KEY)
    tasks = {PATH: print}
    rng = random.Random(2026)
    for message in _messages(python_signer, rng):
        fast_record = bytearray(RECORD_HEADER + 256)
        slow_record = bytearray(RECORD_HEADER + 256)
        fast_outcome = _outcome(fast.open, message, tasks, fast_record)
        slow_outcome = _outcome(python_signer.open, message, tasks, slow_record)
        if isinstance(fast_outcome, tuple) and fast_outcome[0] == "raised":
            assert isinstance(slow_outcome, tuple) and slow_outcome[0] == "raised", message
        else:
            assert fast_outcome == slow_outcome, message
        assert fast_record == slow_record, message


def test_open_records_the_head_of_a_message_larger_than_the_record(speedups: ModuleType) -> None:
    fast = speedups.Signer(KEY)
    message = fast.seal_call(PATH, ("x" * 500,), {}, 1, None)
    record = InflightRecord(100)
    opened = fast.open(message, {PATH: print}, record.buffer)
    assert opened[0] is print
    assert record.take_unfinished() == message[:100]
    assert fast.open(message, {}, record.buffer)[0] is None  # unregistered: nothing recorded
    assert record.take_unfinished() is None


class _Stop:
    signum = 0


def _serve(fast: Any, messages: list[Any], tasks: dict[str, Any], record: bytearray, stop: _Stop,
           batch: int = 64) -> tuple[Any, list[tuple[Any, ...]]]:
    queue = list(messages)
    calls: list[tuple[Any, ...]] = []

    def get(*args: Any) -> Any:
        calls.append(args)
        return queue.pop(0) if queue else b""

    return fast.serve(get, ("first",), ("next",), tasks, record, stop, batch), calls


def test_serve_runs_plain_tasks_and_hands_back_the_rest(speedups: ModuleType) -> None:
    fast = speedups.Signer(KEY)
    ran: list[Any] = []

    def task(*args: Any, **kwargs: Any) -> None:
        ran.append((args, kwargs))

    tasks = {PATH: task}
    record = bytearray(RECORD_HEADER + 256)
    stop = _Stop()
    plain = [fast.seal_call(PATH, (i,), {"k": i}, 1, None) for i in range(3)]
    result, calls = _serve(fast, plain, tasks, record, stop)
    assert result == (3, 3, envelope.SERVE_IDLE, b"")
    assert ran == [((i,), {"k": i}) for i in range(3)]
    assert calls == [("first",), ("next",), ("next",), ("next",)]
    assert record[0] == 0  # idle after each task

    for other in (
        b"plain text",  # not ours: the hook
        plain[0][:-1] + bytes([plain[0][-1] ^ 1]),  # bad tag
        fast.seal_call(PATH, (1,), {}, 1, {"result": "key"}),  # metadata: the Python loop stores the result
        fast.seal_call("unknown:task", (), {}, 1, None),  # unregistered
        fast.seal(pickle.dumps((PATH, (), {1: 2}, 1, None))),  # keywords that are not str
    ):
        ran.clear()
        result, _ = _serve(fast, [plain[1], other, plain[2]], tasks, record, stop)
        taken, done, why, (message, opened) = result
        assert (taken, done, why, message) == (2, 1, envelope.SERVE_SLOW, other)
        assert opened == _outcome(fast.open, other, tasks, bytearray(RECORD_HEADER + 256))
        assert ran == [((1,), {"k": 1})]

    result, _ = _serve(fast, [fast.seal(b"garbage")], tasks, record, stop)
    assert result[:3] == (1, 0, envelope.SERVE_SLOW) and isinstance(result[3][1], Exception)


def test_serve_reports_a_failed_task_with_its_traceback_and_the_record_running(speedups: ModuleType) -> None:
    fast = speedups.Signer(KEY)

    def boom(n: int) -> None:
        raise SystemExit(n)

    record = bytearray(RECORD_HEADER + 256)
    message = fast.seal_call(PATH, (3,), {}, 1, None)
    result, _ = _serve(fast, [message], {PATH: boom}, record, _Stop())
    taken, ran, why, (exc, path, args, kwargs) = result
    assert (taken, ran, why, path, args, kwargs) == (1, 0, envelope.SERVE_FAILED, PATH, (3,), {})
    assert isinstance(exc, SystemExit) and exc.__traceback__ is not None
    assert record[0] == 1 and bytes(record[RECORD_HEADER : RECORD_HEADER + len(message)]) == message


def test_serve_stops_when_told_and_returns_in_batches(speedups: ModuleType) -> None:
    fast = speedups.Signer(KEY)
    stop = _Stop()

    def task(n: int) -> None:
        if n == 2:
            stop.signum = 15

    messages = [fast.seal_call(PATH, (i,), {}, 1, None) for i in range(5)]
    result, _ = _serve(fast, messages, {PATH: task}, bytearray(RECORD_HEADER + 256), stop)
    assert result == (3, 3, envelope.SERVE_STOP, None)
    stop.signum = 0
    result, _ = _serve(fast, messages, {PATH: task}, bytearray(RECORD_HEADER + 256), stop, batch=2)
    assert result == (2, 2, envelope.SERVE_BATCH, None)
    result, _ = _serve(fast, [None], {PATH: task}, bytearray(RECORD_HEADER + 256), stop)
    assert result == (0, 0, envelope.SERVE_IDLE, None)  # a signal was handled in get()


def _queue_pair() -> tuple[socket.socket, socket.socket]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    return sender, receiver


@pytest.mark.parametrize("implementation", ["c", "python"])
def test_queue_writers_refuse_a_full_queue_and_count_every_send(speedups: ModuleType, implementation: str) -> None:
    sender, receiver = _queue_pair()
    reports: list[tuple[int, int, int]] = []
    plugin = SimpleNamespace(count_sent=lambda kind, ident, n: reports.append((kind, ident, n)))
    if implementation == "c":
        writer: Any = speedups.QueueWriter(sender.fileno(), lambda n: plugin.count_sent(1, 2, n), QueueWriter.BATCH)
    else:
        writer = QueueWriter(sender.fileno(), 1, 2, plugin)
    try:
        sent = 0
        while writer.send(b"m" * 100):
            sent += 1
            assert sent < 10_000, "the queue never filled"
        assert sent > QueueWriter.BATCH
        assert writer.send(b"x" * 1_000_000) is False  # larger than the socket takes: refused, not raised
        writer.flush()
        assert sum(n for _, _, n in reports) == sent and writer.unreported == 0
        assert reports[0] == (1, 2, 1)  # the first send is reported at once (no report for a second)
        assert all(r[2] <= QueueWriter.BATCH for r in reports)
        received = 0
        receiver.setblocking(False)
        while True:
            try:
                receiver.recv(200)
            except BlockingIOError:
                break
            received += 1
        assert received == sent
    finally:
        sender.close()
        receiver.close()
    with pytest.raises(OSError) as info:
        writer.send(b"after close")
    assert info.value.errno == errno.EBADF
