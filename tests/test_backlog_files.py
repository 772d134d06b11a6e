"""Backlog files cannot hang or empty a mule: every field is checked, a cut
file replays its intact prefix, a bad file is moved aside once, unsendable
entries are parked, a replay cut by a crash goes on where it stopped, and a
stopping mule writes its backlog before it deletes the files it claimed.
Every task is counted by id."""

from __future__ import annotations

import collections
import os
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from uwsgi_mules import envelope
from uwsgi_mules.datakey import KEY_NAME, DataSigner, data_key
from uwsgi_mules.mule.delivery import backlog
from uwsgi_mules.mule.delivery.backlog import (
    CORRUPT_SUFFIX,
    FILE_MAGIC,
    PARKED_SUFFIX,
    QUEUED_MAGIC,
    SavedOffload,
    load,
    parse,
    parse_queued,
    save,
)
from uwsgi_mules.mule.delivery.recovery import ReplayQueue
from uwsgi_mules.envelope import Signer
from tests import fake_delivery_tasks  # noqa: F401 - registers TASK
from uwsgi_mules.errors import UnknownMule

TASK = "tests.fake_delivery_tasks:work"
INSTANCE_KEY = b"k" * 32


def offloads(ids: range, target: int | bytes = 1, path: str = TASK) -> list[SavedOffload]:
    return [SavedOffload(target, envelope.pack(path, (i,), {}, target), path) for i in ids]


class Sent:
    """A send_nowait that counts what it queued, by task id."""

    def __init__(self, signer: Signer, fail_after: int | None = None) -> None:
        self.signer = signer
        self.ids: collections.Counter[int] = collections.Counter()
        self.fail_after = fail_after

    def __call__(self, message: bytes, target: object) -> bool:
        if target == 9:
            raise UnknownMule("uWSGI has no mule 9")
        if self.fail_after is not None and sum(self.ids.values()) >= self.fail_after:
            raise SystemExit("the replaying mule dies")  # not an Exception: nothing catches it
        self.ids[envelope.decode(self.signer, message).args[0]] += 1
        return True


def replay(directory: Path, lines: list[str], *, sent: Sent | None = None,
           registered: Callable[[str], bool] | None = None) -> Sent:
    signer = Signer(INSTANCE_KEY)
    sent = sent or Sent(signer)
    queue = ReplayQueue(signer, sent, lines.append, directory, registered)
    queue.claim([directory])
    while queue.pump():
        pass
    return sent


def visible(directory: Path) -> list[str]:
    return sorted(p.name.split("-", 2)[-1] for p in directory.iterdir() if not p.name.startswith("."))


def test_saved_entries_load_back_verified(tmp_path: Path) -> None:
    entries = offloads(range(3)) + offloads(range(3, 5), b"farm")
    path = save(tmp_path, entries, label="t")
    assert path is not None
    loaded = load(path)
    assert (loaded.entries, loaded.damage) == (entries, "")
    key = tmp_path / KEY_NAME
    assert key.stat().st_mode & 0o777 == 0o600


def test_the_data_key_outlives_the_instance_and_is_checked(tmp_path: Path) -> None:
    first = data_key(tmp_path)
    assert data_key(tmp_path) == first  # read back, not made again
    os.chmod(tmp_path / KEY_NAME, 0o644)
    with pytest.raises(OSError, match="mode 0600"):
        data_key(tmp_path)
    os.unlink(tmp_path / KEY_NAME)
    os.symlink(tmp_path / "elsewhere", tmp_path / KEY_NAME)
    with pytest.raises(OSError):
        data_key(tmp_path)


def test_a_crafted_queued_entry_with_a_negative_length_does_not_loop() -> None:
    """The measured hang: farm kind, name length -9, body length 0."""
    data = QUEUED_MAGIC + b"K" * 32 + struct.pack("!BiI", 1, -9, 0) * 3
    started = time.thread_time()
    loaded = parse_queued(data, len(QUEUED_MAGIC) + 32)
    assert time.thread_time() - started < 1
    assert loaded.entries == [] and "invalid entry header" in loaded.damage


def test_a_file_cut_by_three_bytes_replays_its_intact_prefix_once_and_is_moved_aside(tmp_path: Path) -> None:
    path = save(tmp_path, offloads(range(199)))
    assert path is not None
    path.write_bytes(path.read_bytes()[:-3])
    lines: list[str] = []
    sent = replay(tmp_path, lines)
    print(f"\nsent 199, replayed {sum(sent.ids.values())}, duplicated {sum(n > 1 for n in sent.ids.values())}")
    assert sent.ids == collections.Counter(range(198))
    assert visible(tmp_path) == [f"mule.backlog{CORRUPT_SUFFIX}"]
    assert any("is damaged" in line and "198 intact" in line for line in lines), lines
    again: list[str] = []
    assert replay(tmp_path, again).ids == collections.Counter(), "moved aside once: never claimed again"


def test_a_forged_entry_stops_the_file_there_and_never_runs(tmp_path: Path) -> None:
    good = save(tmp_path, offloads(range(2)))
    assert good is not None
    data = good.read_bytes()
    nonce = data[len(FILE_MAGIC) : backlog.FILE_HEADER_SIZE]
    forged = backlog.encode_entries(DataSigner(b"x" * 32), nonce, offloads(range(4)))
    genuine = backlog.encode_entries(DataSigner(data_key(tmp_path)), nonce, offloads(range(4)))
    good.write_bytes(data + forged[2] + genuine[3])
    lines: list[str] = []
    assert replay(tmp_path, lines).ids == collections.Counter({0: 1, 1: 1})
    assert any("does not verify" in line for line in lines), lines


def test_an_entry_for_a_mule_that_no_longer_exists_is_parked_once(tmp_path: Path) -> None:
    save(tmp_path, offloads(range(2)) + offloads(range(2, 5), target=9) + offloads(range(5, 6)))
    lines: list[str] = []
    assert replay(tmp_path, lines).ids == collections.Counter({0: 1, 1: 1, 5: 1})
    assert visible(tmp_path) == [f"parked{PARKED_SUFFIX}"]
    assert any("3 saved offload(s) can never be sent (UnknownMule" in line and "parked in" in line for line in lines)
    assert replay(tmp_path, []).ids == collections.Counter(), "parked entries are not replayed again"
    parked = next(tmp_path.glob(f"*{PARKED_SUFFIX}"))
    assert [e.target for e in load(parked).entries] == [9, 9, 9]


def test_an_unregistered_task_is_parked_before_anything_is_unpickled(tmp_path: Path) -> None:
    save(tmp_path, offloads(range(2)) + offloads(range(2, 3), path="evil.module:gadget"))
    lines: list[str] = []
    sent = replay(tmp_path, lines, registered=lambda path: path == TASK)
    assert sent.ids == collections.Counter({0: 1, 1: 1})
    assert any("task evil.module:gadget is not registered in this mule" in line for line in lines), lines


def test_a_replay_cut_by_a_crash_goes_on_where_it_stopped(tmp_path: Path) -> None:
    save(tmp_path, offloads(range(5)))
    signer = Signer(INSTANCE_KEY)
    first = Sent(signer, fail_after=2)
    with pytest.raises(SystemExit):
        replay(tmp_path, [], sent=first)
    (claimed,) = tmp_path.glob("*.claimed-*")
    claimed.rename(claimed.with_name(claimed.name.rsplit("-", 1)[0] + "-999999999"))  # its process died
    lines: list[str] = []
    second = replay(tmp_path, lines)
    total = first.ids + second.ids
    print(f"\nsent 5, replayed {sum(total.values())}, duplicated {sum(n > 1 for n in total.values())}")
    assert total == collections.Counter(range(5))
    assert any("2 handled before a crash skipped" in line for line in lines), lines
    assert visible(tmp_path) == []


def test_a_stopping_replay_keeps_its_claimed_files_until_the_new_backlog_is_written(tmp_path: Path) -> None:
    save(tmp_path, offloads(range(4)))
    signer = Signer(INSTANCE_KEY)
    queue = ReplayQueue(signer, lambda message, target: False, [].append, tmp_path)  # queue full
    queue.claim([tmp_path])
    unsent = queue.take_unsent()
    assert len(unsent) == 4
    queue.keep_sources()  # saving them failed: the claimed file stays
    (claimed,) = tmp_path.glob("*.claimed-*")
    claimed.rename(claimed.with_name(claimed.name.rsplit("-", 1)[0] + "-999999999"))
    assert replay(tmp_path, []).ids == collections.Counter(range(4))


# -- fuzz -----------------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, int]:
    """A mutated copy and the first byte it changed (everything before is intact)."""
    choice = rng.randrange(6)
    size = len(data)
    at = rng.randrange(len(FILE_MAGIC), size)
    if choice == 0:  # cut
        return data[:at], at
    if choice == 1:  # flip bytes
        buf = bytearray(data)
        for i in range(min(rng.randint(1, 4), size - at)):
            buf[at + i] ^= rng.randint(1, 255)
        return bytes(buf), at
    if choice == 2:  # a crafted header: huge, zero or "negative" lengths
        value = rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFF7])
        header = struct.pack("!BHHII", rng.randint(0, 3), value & 0xFFFF, rng.choice([0, 9, 0xFFFF]),
                             rng.choice([0, 1, value]), value)
        return data[:at] + header + data[at:], at
    if choice == 3:  # random bytes inserted
        return data[:at] + rng.randbytes(rng.randint(1, 40)) + data[at:], at
    if choice == 4:  # entries copied after the end: well formed, signed, but not at their place
        return data + data[backlog.FILE_HEADER_SIZE : at], size
    return data[:at] + bytes(rng.randint(1, 64)), at  # zeros


def test_fuzzed_backlog_files_never_hang_never_raise_and_replay_the_intact_prefix_once() -> None:
    rng = random.Random(21)
    signer = DataSigner(b"d" * 32)
    entries = offloads(range(12)) + offloads(range(12, 16), b"farm-a") + offloads(range(16, 20), 0)
    nonce = bytes(range(16))
    chunks = backlog.encode_entries(signer, nonce, entries)
    data = FILE_MAGIC + nonce + b"".join(chunks)
    ends = []  # byte where each entry ends
    position = backlog.FILE_HEADER_SIZE
    for chunk in chunks:
        position += len(chunk)
        ends.append(position)
    slowest = 0.0
    started = time.monotonic()
    # the bound is on this thread's CPU time: a loop that never ends burns it,
    # while a busy machine only stretches the wall clock (a flaky bound)
    for _ in range(10_000):
        mutated, changed_at = mutate(rng, data)
        begin = time.thread_time()
        loaded = parse(mutated, signer)  # must not raise
        slowest = max(slowest, time.thread_time() - begin)
        intact = sum(1 for end in ends if end <= changed_at)
        # every intact entry, once; nothing after the damage
        assert loaded.entries == entries[:intact]
        if loaded.damage == "":  # read to its end: a cut between entries looks like a shorter file
            assert len(mutated) == ([backlog.FILE_HEADER_SIZE] + ends)[len(loaded.entries)]
    print(f"\n10000 mutated files in {time.monotonic() - started:.2f}s, slowest {slowest * 1000:.1f} ms of CPU")
    assert slowest < 1.0


def test_fuzzed_queued_files_never_hang_or_raise() -> None:
    rng = random.Random(7)
    body = b"".join(struct.pack("!BiI", 0, 1, 5) + b"hello" for _ in range(10))
    data = QUEUED_MAGIC + b"K" * 32 + body
    for _ in range(2_000):
        mutated, _ = mutate(rng, data)
        begin = time.thread_time()
        parse_queued(mutated, len(QUEUED_MAGIC) + 32)
        assert time.thread_time() - begin < 1.0


def test_fuzzed_files_on_disk_replay_each_intact_entry_once(tmp_path: Path) -> None:
    """The whole path a mule takes (claim, load, replay) on 200 mutated files."""
    rng = random.Random(4)
    signer = Signer(INSTANCE_KEY)
    for round_ in range(200):
        directory = tmp_path / str(round_)
        directory.mkdir(mode=0o700)
        path = save(directory, offloads(range(8)))
        assert path is not None
        data = path.read_bytes()
        mutated, changed_at = mutate(rng, data)
        path.write_bytes(mutated)
        chunks_end = backlog.FILE_HEADER_SIZE
        ends = []
        for entry in load_entries_sizes(data):
            chunks_end += entry
            ends.append(chunks_end)
        intact = sum(1 for end in ends if end <= changed_at)
        sent = Sent(signer)
        queue = ReplayQueue(signer, sent, [].append, directory)
        begin = time.thread_time()
        queue.claim([directory])
        while queue.pump():
            pass
        assert time.thread_time() - begin < 1.0
        assert sent.ids == collections.Counter(range(intact))
        leftovers = [p.name for p in directory.iterdir() if not p.name.startswith(".")]
        assert all(name.endswith(CORRUPT_SUFFIX) for name in leftovers), leftovers


def load_entries_sizes(data: bytes) -> list[int]:
    """The byte size of each entry of a genuine backlog file."""
    sizes = []
    offset = backlog.FILE_HEADER_SIZE
    while offset < len(data):
        _, path_len, farm_len, _, body_len = struct.unpack_from("!BHHII", data, offset)
        size = 13 + path_len + farm_len + body_len + 16
        sizes.append(size)
        offset += size
    return sizes


def test_a_stopping_mule_writes_its_backlog_before_deleting_the_files_it_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from uwsgi_mules.fake import FakeUwsgi
    from uwsgi_mules.mule import loop as mule

    backlog_dir = tmp_path / "backlog"
    backlog_dir.mkdir(mode=0o700)
    seen_at_save: list[list[str]] = []
    real_persist = mule.persist

    def persist(drained: object, directory: Path, label: str) -> Path | None:
        seen_at_save.append(sorted(p.name for p in backlog_dir.glob("*.claimed-*")))
        return real_persist(drained, directory, label)  # type: ignore[arg-type]

    monkeypatch.setattr(mule, "persist", persist)
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"], backlog_dir=None) as fake:
        fake.backlog_dir = backlog_dir  # saved by a previous instance: the mule itself replays it
        save(backlog_dir, offloads(range(6)))
        with fake.as_mule(1):
            server = mule.MuleLoop(fake)
            server.start()
            assert len(server.replay.pending) == 6
            server.request_stop(signal.SIGINT)
            server.stop()  # it saves; run() alone exits the process
    assert len(seen_at_save) == 1 and len(seen_at_save[0]) == 1, "the claimed file exists while the new one is written"
    assert list(backlog_dir.glob("*.claimed-*")) == [], "and is deleted afterwards"
    (kept,) = backlog_dir.glob("*.backlog")
    assert [e.body for e in load(kept).entries] == [e.body for e in offloads(range(6))]


def test_the_data_key_of_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(OSError, match="writable by other users"):
        data_key(shared)


def write_queued(directory: Path, key: bytes, messages: list[bytes]) -> None:
    entries = b"".join(struct.pack("!BiI", 0, 1, len(m)) + m for m in messages)
    path = directory / f"{time.time_ns():020d}-1-master.queued"
    path.write_bytes(QUEUED_MAGIC + key + entries)
    os.chmod(path, 0o600)


def test_queued_files_are_replayed_only_with_a_key_a_mule_of_the_directory_used(tmp_path: Path) -> None:
    previous, stranger = b"p" * 32, b"s" * 32
    backlog.trust_instance_key(tmp_path, previous)  # a mule of the instance that wrote it recorded its key

    def sealed(key: bytes, ids: range) -> list[bytes]:
        return [Signer(key).seal(envelope.pack(TASK, (i,), {}, 1)) for i in ids]

    write_queued(tmp_path, INSTANCE_KEY, sealed(INSTANCE_KEY, range(0, 2)))  # this instance (a reload)
    write_queued(tmp_path, previous, sealed(previous, range(2, 4)))  # a stopped instance of this directory
    write_queued(tmp_path, stranger, sealed(stranger, range(4, 6)))  # anyone else
    lines: list[str] = []
    assert replay(tmp_path, lines).ids == collections.Counter(range(4))
    assert visible(tmp_path) == [f"master.queued{CORRUPT_SUFFIX}"]
    assert any("signed with a key no mule of this backlog directory used" in line for line in lines), lines


def test_a_mule_parks_saved_offloads_for_a_mule_the_layout_no_longer_has(tmp_path: Path) -> None:
    """The mule's own send path (not a stand-in) refuses mule 3 of a one-mule layout."""
    from uwsgi_mules import mule
    from uwsgi_mules.fake import FakeUwsgi

    directory = tmp_path / "backlog"
    save(directory, offloads(range(2), target=3) + offloads(range(2, 4), target=1))
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"], backlog_dir=None) as fake:
        fake.backlog_dir = directory  # read by the mule itself, as on real uWSGI
        with fake.as_mule(1):
            server = mule.MuleLoop(fake)
            server.start()
            while server.replay.pump():
                pass
        assert server.replay.sent == 2 and server.replay.parked == 2
        lines = list(fake.log_lines)
    assert any("2 saved offload(s) can never be sent (UnknownMule" in line for line in lines), lines
    assert visible(directory) == [f"parked{PARKED_SUFFIX}"]


def test_processes_creating_the_data_key_at_once_all_read_the_same_bytes(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from uwsgi_mules.datakey import data_key; " \
           "print(data_key(Path(sys.argv[1])).hex())"
    children = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
                for _ in range(6)]
    keys = {child.communicate(timeout=60)[0].strip() for child in children}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert [p.name for p in tmp_path.iterdir()] == [KEY_NAME], "no temporary file left"


def test_a_backlog_whose_data_key_was_deleted_is_refused_not_run(tmp_path: Path) -> None:
    save(tmp_path, offloads(range(3)))
    os.unlink(tmp_path / KEY_NAME)
    lines: list[str] = []
    assert replay(tmp_path, lines).ids == collections.Counter()
    assert visible(tmp_path) == [f"mule.backlog{CORRUPT_SUFFIX}"]


def test_a_queued_message_another_key_signed_is_dropped_with_a_log_line(tmp_path: Path) -> None:
    messages = [Signer(INSTANCE_KEY).seal(envelope.pack(TASK, (i,), {}, 1)) for i in range(2)]
    messages.insert(1, Signer(b"s" * 32).seal(envelope.pack(TASK, (9,), {}, 1)))
    write_queued(tmp_path, INSTANCE_KEY, messages)
    lines: list[str] = []
    assert replay(tmp_path, lines).ids == collections.Counter(range(2))
    assert any("1 message(s) of" in line and "dropped" in line for line in lines), lines
