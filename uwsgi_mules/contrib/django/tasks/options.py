"""``TASKS[alias]["OPTIONS"]`` of :class:`~uwsgi_mules.contrib.django.tasks.MulesBackend`, checked.

::

    TASKS = {
        "default": {
            "BACKEND": "uwsgi_mules.contrib.django.tasks.MulesBackend",
            "QUEUES": ["default", "reports", "mule2"],
            "OPTIONS": {
                "TARGETS": {"slow": "reports"},   # queue -> 0 (shared queue), mule id, or farm name
                "RESULTS": {                      # the uWSGI cache that holds results
                    "CACHE": "uwsgi-mules-tasks", "ITEMS": 2000, "BLOCKSIZE": 16384,
                    "EXPIRES": 86400, "STORE": "uwsgi-mules-tasks.cache",
                },
                "ON_COMMIT": False,               # send when the transaction commits
                "RETRIES": 0,                     # runs again after a mule crash or a RETRY_ON error
                "RETRY_ON": [],                   # exception classes (or their dotted paths)
                "RETRY_BACKOFF": 1.0, "RETRY_BACKOFF_MAX": 600.0, "RETRY_JITTER": True,
            },
        }
    }

Without a ``TARGETS`` entry a queue goes by its name: ``"default"`` to the
shared queue (the first free mule), ``"mule<N>"`` to mule N, a farm's name
to that farm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ....core.retry_policy import RetryPolicy
from ....layout.caches import CacheSpec

#: the cache of Django task results (not the one of ``submit()``: these are read many times)
DEFAULT_RESULTS_CACHE = "uwsgi-mules-tasks"
#: the store file of the results cache, relative to the directory uWSGI starts in
DEFAULT_STORE = "uwsgi-mules-tasks.cache"

MULE_QUEUE = re.compile(r"mule([1-9][0-9]*)\Z")

RETRY_KEYS = {"RETRIES", "RETRY_ON", "RETRY_BACKOFF", "RETRY_BACKOFF_MAX", "RETRY_JITTER"}
KNOWN_KEYS = {"TARGETS", "RESULTS", "ON_COMMIT"} | RETRY_KEYS
RESULTS_KEYS = {"CACHE", "ITEMS", "BLOCKSIZE", "EXPIRES", "STORE"}

#: a queue's target as the settings write it: 0 the shared queue, N >= 1 a mule, "name" a farm
TargetSetting = int | str


@dataclass(frozen=True)
class ResultsOptions:
    """Where results live: a ``cache2`` of ``items - 1`` results of at most
    ``blocksize`` bytes each, kept ``expires`` seconds, saved in ``store``
    (a file) so that they survive a graceful reload; ``store=None`` keeps
    them in memory only (lost at a reload)."""

    cache: str = DEFAULT_RESULTS_CACHE
    items: int = 2000
    blocksize: int = 16384
    expires: int = 86400
    store: str | None = DEFAULT_STORE

    @property
    def spec(self) -> CacheSpec:
        return CacheSpec(self.cache, self.items, self.blocksize)

    def cache2_value(self) -> str:
        """The value of the ``cache2`` option."""
        value = self.spec.option_value()
        return value if self.store is None else f"{value},store={self.store}"


@dataclass(frozen=True)
class BackendOptions:
    """The checked ``OPTIONS`` of one MulesBackend."""

    targets: Mapping[str, TargetSetting] = field(default_factory=dict)
    results: ResultsOptions = field(default_factory=ResultsOptions)
    on_commit: bool = False
    #: the tasks' retries (:class:`~uwsgi_mules.core.retry_policy.RetryPolicy`), as for offloads
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def parse_options(alias: str, raw: Any) -> BackendOptions:
    """Check ``OPTIONS``; ``ImproperlyConfigured`` naming the key otherwise."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, not {raw!r}")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown keys {unknown}; known: {sorted(KNOWN_KEYS)}")
    targets_raw = raw.get("TARGETS", {})
    if not isinstance(targets_raw, Mapping):
        raise ImproperlyConfigured(f"{where}['TARGETS'] must map queue names to targets, not {targets_raw!r}")
    targets: dict[str, TargetSetting] = {}
    for queue, target in targets_raw.items():
        if isinstance(target, bool) or not isinstance(target, (int, str)) or target == "" or (
            isinstance(target, int) and target < 0
        ):
            raise ImproperlyConfigured(
                f"{where}['TARGETS'][{queue!r}] must be 0 (the shared queue), a mule id or a farm name, "
                f"not {target!r}"
            )
        targets[str(queue)] = target
    on_commit = raw.get("ON_COMMIT", False)
    if not isinstance(on_commit, bool):
        raise ImproperlyConfigured(f"{where}['ON_COMMIT'] must be True or False, not {on_commit!r}")
    return BackendOptions(targets, _parse_results(where, raw.get("RESULTS", {})), on_commit, _parse_retry(where, raw))


def _parse_retry(where: str, raw: Mapping[str, Any]) -> RetryPolicy:
    retry_on = raw.get("RETRY_ON", ())
    if isinstance(retry_on, (str, type)) or not isinstance(retry_on, (list, tuple)):
        raise ImproperlyConfigured(f"{where}['RETRY_ON'] must be a list of exception classes or paths, not {retry_on!r}")
    classes = []
    for item in retry_on:
        try:
            classes.append(import_string(item) if isinstance(item, str) else item)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{where}['RETRY_ON']: cannot import {item!r}: {exc}") from exc
    defaults = RetryPolicy()
    try:
        return RetryPolicy.build(
            raw.get("RETRIES", 0), tuple(classes), raw.get("RETRY_BACKOFF", defaults.retry_backoff),
            raw.get("RETRY_BACKOFF_MAX", defaults.retry_backoff_max), raw.get("RETRY_JITTER", defaults.retry_jitter),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{where}: {exc} (keys {sorted(RETRY_KEYS)})") from exc


def _parse_results(where: str, raw: Any) -> ResultsOptions:
    where = f"{where}['RESULTS']"
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, not {raw!r}")
    unknown = sorted(set(raw) - RESULTS_KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown keys {unknown}; known: {sorted(RESULTS_KEYS)}")
    defaults = ResultsOptions()
    values: dict[str, Any] = {}
    for key, minimum in (("ITEMS", 2), ("BLOCKSIZE", 1024), ("EXPIRES", 1)):
        value = raw.get(key, getattr(defaults, key.lower()))
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ImproperlyConfigured(f"{where}['{key}'] must be an int >= {minimum}, not {value!r}")
        values[key.lower()] = value
    cache = raw.get("CACHE", defaults.cache)
    store = raw.get("STORE", defaults.store)
    if store is not None and (not isinstance(store, str) or not store or any(c in store for c in ",\n")):
        raise ImproperlyConfigured(f"{where}['STORE'] must be a file path (no commas) or None, not {store!r}")
    try:
        results = ResultsOptions(cache=cache, store=store, **values)
        results.spec  # noqa: B018 - validates the cache name
    except Exception as exc:
        raise ImproperlyConfigured(f"{where}: {exc}") from exc
    return results


def default_target(queue: str, farms: Mapping[str, Any]) -> TargetSetting | None:
    """The target of a queue that ``TARGETS`` does not name (None: it has none)."""
    if queue == "default":
        return 0
    if queue in farms:
        return queue
    match = MULE_QUEUE.match(queue)
    if match:
        return int(match.group(1))
    return None
