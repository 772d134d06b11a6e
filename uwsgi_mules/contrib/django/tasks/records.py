"""Task results in a uWSGI cache, signed with the instance key.

One cache value per task id: the JSON of a :class:`TaskRecord`, signed
like ``submit()`` results (:mod:`uwsgi_mules.runtime.result_records`):
:data:`DOMAIN`, a 16-byte keyed BLAKE2b tag of the domain, the id and the
JSON (the key that signs envelopes), then the JSON. A value that does not
verify (forged, copied to another id, written by an instance with another
key, a ``submit()`` result) is never decoded: the id reads as unknown.
Values are JSON, not pickles: Django normalises arguments and return
values to JSON anyway.

The cache is a ``cache2`` of fixed-size slots. When it is full, the oldest
results are evicted (ids start with their enqueue time) and a log line says
how many and how to make room; a record larger than one slot loses its
traceback text first, then its return value (the task is marked FAILED with
an error saying why), so a result is never silently missing.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

from ....backends.base import Backend
from ....envelope import TAG_SIZE, Signer
from ....runtime.result_records import UnsignedResult, open_value, seal_value
from .options import ResultsOptions
from .record import FAILED, READY, RUNNING, SUCCESSFUL, TaskRecord, TransitionRefused

__all__ = [
    "FAILED", "READY", "RUNNING", "SUCCESSFUL", "ResultStore", "ResultsCacheMissing", "ResultsFull", "StaleResult",
    "TaskRecord", "TransitionRefused", "new_id", "worker_id",
]

#: prefix of every signed record: a record is never mistaken for an envelope or another value
DOMAIN = b"\x00uwsgi-mules-django-task\x01"
#: share of the oldest results evicted when the cache is full
EVICT_FRACTION = 0.1
#: how many task ids a process remembers the newest version of (a reader refuses older ones)
SEEN_VERSIONS = 4096

#: (cache, task id) -> (newest version, its JSON) read or written by this process
_seen: OrderedDict[tuple[str, str], tuple[int, bytes]] = OrderedDict()
_seen_lock = threading.Lock()


def _remember(key: tuple[str, str], version: int, body: bytes) -> None:
    """Note the newest version of a result (caller holds ``_seen_lock``)."""
    _seen[key] = (version, body)
    _seen.move_to_end(key)
    if len(_seen) > SEEN_VERSIONS:
        _seen.popitem(last=False)


class ResultsFull(RuntimeError):
    """A result could not be stored even after evicting old results."""


class ResultsCacheMissing(ResultsFull):
    """This uWSGI has no cache for the results."""


class StaleResult(RuntimeError):
    """A write of a record older than (or as old as) the one the cache holds: refused."""


def new_id(now: float) -> str:
    """A task id: 12 hex digits of the enqueue time in milliseconds (ids sort
    by age, for eviction), then 20 random hex digits."""
    return f"{int(now * 1000):012x}{os.urandom(10).hex()}"


def worker_id(backend: Backend) -> str:
    """``mule<N>:<pid>``: the mule and the process that ran (or runs) a task."""
    return f"mule{backend.mule_id()}:{os.getpid()}"


class ResultStore:
    """Reads and writes :class:`TaskRecord` values in one uWSGI cache.

    Versions only grow: :meth:`write` never replaces the record the cache
    holds by an older or equal version, and :meth:`read` never returns a
    version older than the newest this store has read or written for the id
    (the last :data:`SEEN_VERSIONS` ids, shared by every store of the
    process): an older genuine record written back into the cache is
    refused with a log line.
    """

    __slots__ = ("backend", "options", "signer")

    def __init__(self, backend: Backend, options: ResultsOptions) -> None:
        self.backend = backend
        self.options = options
        self.signer: Signer = backend.signer()

    def read(self, key: str) -> TaskRecord | None:
        """The record of ``key``; None when unknown, expired or not genuine."""
        raw = self.backend.cache_get(key, self.options.cache)
        if raw is None:
            return None
        try:
            body = bytes(open_value(self.signer, DOMAIN, key, raw))
        except UnsignedResult:
            self.backend.log(f"uwsgi-mules: the task result {key!r} in cache {self.options.cache!r} has a bad "
                             "signature (written by another instance, or forged); read as unknown")
            return None
        return self._newest(TaskRecord.from_json(body), body)

    def _newest(self, record: TaskRecord, body: bytes) -> TaskRecord:
        """``record``, or the newer version of it this store has seen."""
        key = (self.options.cache, record.id)
        with _seen_lock:
            seen = _seen.get(key)
            if seen is None or seen[0] <= record.version:
                _remember(key, record.version, body)
                return record
        self.backend.log(
            f"uwsgi-mules: the task result {record.id!r} in cache {self.options.cache!r} is version "
            f"{record.version} ({record.status}), older than version {seen[0]} read before: refused (an older "
            "record was written back into the cache); the newer one is kept"
        )
        return TaskRecord.from_json(seen[1])

    def write(self, record: TaskRecord, *, new: bool = False, value: bytes | None = None) -> None:
        """Store ``record`` (``new``: it must not exist yet; ``value``: its
        :meth:`sealed` bytes when already computed). Raises
        :class:`StaleResult` when the cache holds the same or a newer version,
        :class:`ResultsFull` when it cannot be stored (both logged first)."""
        if not new:
            current = self.read(record.id)
            if current is not None and current.version >= record.version:
                message = (f"uwsgi-mules: the result of task {record.id} ({record.task_path}) version "
                           f"{record.version} ({record.status}) was not stored: cache {self.options.cache!r} "
                           f"holds version {current.version} ({current.status})")
                self.backend.log(message)
                raise StaleResult(message)
        value = value or self.sealed(record)
        self._store(record, new, value)
        body = value[len(DOMAIN) + TAG_SIZE:]  # the JSON the value signs (seal_value's layout)
        with _seen_lock:
            _remember((self.options.cache, record.id), record.version, body)

    def _store(self, record: TaskRecord, new: bool, value: bytes) -> None:
        store = self.backend.cache_set if new else self.backend.cache_update
        expires = self.options.expires
        if store(record.id, value, expires, self.options.cache):
            return
        self._check_cache()
        if self.backend.cache_exists(record.id, self.options.cache) and new:
            raise ResultsFull(f"task id {record.id} exists already in cache {self.options.cache!r}")
        self._evict_oldest()
        if store(record.id, value, expires, self.options.cache):
            return
        message = (f"uwsgi-mules: the result of task {record.id} ({record.task_path}, {record.status}) could not "
                   f"be stored in cache {self.options.cache!r}, even after evicting old results")
        self.backend.log(message)
        raise ResultsFull(message)

    def _check_cache(self) -> None:
        try:
            self.backend.cache_keys(self.options.cache)
        except (ValueError, NotImplementedError) as exc:
            raise ResultsCacheMissing(
                f"Django task results need the uWSGI cache {self.options.cache!r}: render the config with "
                f"manage.py uwsgi_mules_ini (it adds 'cache2 = {self.options.cache2_value()}'), and give "
                "test fakes FakeUwsgi(**fake_options()) (uwsgi_mules.contrib.django.ini)"
            ) from exc

    def delete(self, key: str) -> None:
        self.backend.cache_del(key, self.options.cache)

    def _seal(self, record: TaskRecord) -> bytes:
        return seal_value(self.signer, DOMAIN, record.id, record.to_json())

    def sealed(self, record: TaskRecord) -> bytes:
        """The signed value, shrunk to one cache slot: tracebacks are cut to
        their last lines first, then a too large return value fails the task."""
        value = self._seal(record)
        limit = self.options.blocksize
        if len(value) <= limit:
            return value
        if record.errors:
            for error in record.errors:
                if len(error) > 1:
                    error[1] = "...(cut to fit the results cache)\n" + error[1][-1024:]
            value = self._seal(record)
        if len(value) > limit and record.status == SUCCESSFUL:
            record.fail_to_store([
                "uwsgi_mules.contrib.django.tasks.records.ResultsFull",
                f"the return value does not fit one slot of the results cache {self.options.cache!r} "
                f"({len(value)} > {limit} bytes): return a reference (a file, a database id) or raise "
                "OPTIONS['RESULTS']['BLOCKSIZE']",
            ])
            value = self._seal(record)
        if len(value) > limit:
            raise ResultsFull(
                f"the record of task {record.id} ({record.task_path}) takes {len(value)} bytes, more than one "
                f"slot of the results cache {self.options.cache!r} ({limit} bytes): pass smaller arguments "
                "(ids, not objects) or raise OPTIONS['RESULTS']['BLOCKSIZE']"
            )
        return value

    def _evict_oldest(self) -> None:
        """The cache is full: delete the oldest tenth of the results, and say so."""
        cache = self.options.cache
        keys = sorted(self.backend.cache_keys(cache))
        count = max(1, int(len(keys) * EVICT_FRACTION))
        for key in keys[:count]:
            self.backend.cache_del(key, cache)
        oldest = _enqueued_at(keys[0]) if keys else None
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(oldest)) if oldest else "?"
        self.backend.log(
            f"uwsgi-mules: the task results cache {cache!r} is full ({len(keys)} results): evicted the {count} "
            f"oldest (enqueued since {when}); their ids now read as unknown. Raise "
            "OPTIONS['RESULTS']['ITEMS'] or lower 'EXPIRES'"
        )


def _enqueued_at(key: bytes) -> float | None:
    try:
        return int(key[:12], 16) / 1000
    except ValueError:
        return None
