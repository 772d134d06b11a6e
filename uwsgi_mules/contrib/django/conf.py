"""The ``UWSGI_MULES`` setting: one dict in ``settings.py``, read and checked here.

Every key is optional::

    UWSGI_MULES = {
        "SEND_TIMEOUT": 10.0,       # seconds a full queue is retried, then QueueFull
        "DEFAULT_TARGET": 0,        # where @offload() sends: 0 shared queue, 1.. a mule, "name" a farm
        "LOCAL_MODE": "inline",     # outside uWSGI: "inline", "fake" (mule threads) or "off"
        "AUTODISCOVER": True,       # import every installed app's mules.py in ready()
        "MULES": 1,                 # programmed Django mules (or a list of mule programs)
        "FARMS": {},                # {"name": [mule ids]}
        "MSG_BUFFER": None,         # mule-msg-size (queue socket buffer, bytes)
        "MSG_BUFFER_RECV": None,    # bytes a Django mule reads at once
        "INI": {},                  # any other uWSGI option for manage.py uwsgi_mules_ini
        "ROUTES": {},               # targets sent to Celery instead of local mules:
                                    # {"reports": {"APP": "proj.celery:app", "QUEUE": "reports"}, 2: {...}}
        "PERIODIC": {},             # task paths -> schedules (contrib/django/periodic.py)
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: mule program of the Django entry point (what ``MULES = 2`` renders twice)
DJANGO_ENTRY_POINT = "uwsgi_mules.contrib.django.mule:run"

#: values of ``LOCAL_MODE``
LOCAL_MODES = ("inline", "fake", "off")

SETTING_NAME = "UWSGI_MULES"

IniValue = str | int | bool | None


@dataclass(frozen=True)
class MulesSettings:
    """The checked content of ``settings.UWSGI_MULES``."""

    #: seconds a send retries a full queue before ``QueueFull``; None keeps
    #: uwsgi-mules' default (10 s)
    send_timeout: float | None = None
    #: target of ``@offload()`` without an argument (0: the shared queue,
    #: taken by the first free mule)
    default_target: int | str = 0
    #: what offloads do when the process does not run under uWSGI
    local_mode: str = "inline"
    #: import ``<app>.mules`` for every installed app in ``ready()``
    autodiscover: bool = True
    #: mule programs (None: signal-only); an int N means N Django mules
    mules: tuple[str | None, ...] = (DJANGO_ENTRY_POINT,)
    farms: tuple[tuple[str, tuple[int, ...]], ...] = ()
    msg_buffer: int | None = None
    msg_buffer_recv: int | None = None
    #: extra uWSGI options for the INI command, in order
    ini: tuple[tuple[str, IniValue | tuple[IniValue, ...]], ...] = field(default=())
    #: Celery routes: (target, "module:app", queue or None); see docs/scaling.md
    routes: tuple[tuple[int | str, str, str | None], ...] = ()

    @property
    def farms_dict(self) -> dict[str, list[int]]:
        return {name: list(ids) for name, ids in self.farms}


KNOWN_KEYS = {
    "SEND_TIMEOUT", "DEFAULT_TARGET", "LOCAL_MODE", "AUTODISCOVER", "MULES", "FARMS",
    "MSG_BUFFER", "MSG_BUFFER_RECV", "INI", "ROUTES",
    "PERIODIC",  # read by contrib/django/periodic.py
}

ROUTE_KEYS = {"APP", "QUEUE"}


def parse_settings(raw: Mapping[str, Any] | None) -> MulesSettings:
    """Check a ``UWSGI_MULES`` dict; raise ``ImproperlyConfigured`` with the
    offending key on anything wrong."""
    from django.core.exceptions import ImproperlyConfigured

    def bad(key: str, problem: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{SETTING_NAME}[{key!r}] {problem}")

    raw = dict(raw or {})
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{SETTING_NAME} has unknown keys {unknown}; known: {sorted(KNOWN_KEYS)}")
    timeout = _parse_timeout(raw.get("SEND_TIMEOUT"), bad)
    sizes = {key: _parse_size(key, raw.get(key), bad) for key in ("MSG_BUFFER", "MSG_BUFFER_RECV")}
    return MulesSettings(
        routes=_parse_routes(raw.get("ROUTES", {}), bad),
        send_timeout=timeout,
        default_target=_parse_target(raw.get("DEFAULT_TARGET", 0), bad),
        local_mode=_parse_local_mode(raw.get("LOCAL_MODE", "inline"), bad),
        autodiscover=bool(raw.get("AUTODISCOVER", True)),
        mules=_parse_mules(raw.get("MULES", 1), bad),
        farms=_parse_farms(raw.get("FARMS", {}), bad),
        msg_buffer=sizes["MSG_BUFFER"],
        msg_buffer_recv=sizes["MSG_BUFFER_RECV"],
        ini=_parse_ini(raw.get("INI", {}), bad),
    )


def _parse_timeout(timeout: Any, bad: Any) -> float | None:
    """``SEND_TIMEOUT``: seconds >= 0, or None (wait as long as it takes)."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise bad("SEND_TIMEOUT", f"must be a number of seconds >= 0 or None, not {timeout!r}")
    return None if timeout is None else float(timeout)


def _parse_target(target: Any, bad: Any) -> int | str:
    """``DEFAULT_TARGET``: 0 (the shared queue), a mule id or a farm name."""
    if isinstance(target, bool) or not isinstance(target, (int, str)) or (isinstance(target, int) and target < 0):
        raise bad("DEFAULT_TARGET", f"must be 0 (shared queue), a mule id or a farm name, not {target!r}")
    return target


def _parse_local_mode(mode: Any, bad: Any) -> str:
    """``LOCAL_MODE``: what an offload does outside uWSGI."""
    if mode not in LOCAL_MODES:
        raise bad("LOCAL_MODE", f"must be one of {LOCAL_MODES}, not {mode!r}")
    return str(mode)


def _parse_mules(mules_raw: Any, bad: Any) -> tuple[str | None, ...]:
    """``MULES``: a count of Django mules, or a list of mule programs (None: signal-only)."""
    if isinstance(mules_raw, bool) or not isinstance(mules_raw, (int, list, tuple)):
        raise bad("MULES", f"must be a count of Django mules or a list of mule programs, not {mules_raw!r}")
    if isinstance(mules_raw, int):
        if mules_raw < 0:
            raise bad("MULES", f"must be >= 0, not {mules_raw}")
        return (DJANGO_ENTRY_POINT,) * mules_raw
    return tuple(m or None for m in mules_raw)


def _parse_farms(farms_raw: Any, bad: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``FARMS``: farm name to a list of mule ids."""
    if not isinstance(farms_raw, Mapping):
        raise bad("FARMS", f"must be a dict of farm name to mule ids, not {farms_raw!r}")
    farms = []
    for name, ids in farms_raw.items():
        if not isinstance(ids, Sequence) or isinstance(ids, str) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise bad("FARMS", f"farm {name!r}: mule ids must be a list of ints, not {ids!r}")
        farms.append((str(name), tuple(ids)))
    return tuple(farms)


def _parse_size(key: str, value: Any, bad: Any) -> int | None:
    """``MSG_BUFFER`` / ``MSG_BUFFER_RECV``: a positive number of bytes, or None (uWSGI's default)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise bad(key, f"must be a positive number of bytes or None, not {value!r}")
    return value


def _parse_ini(ini_raw: Any, bad: Any) -> tuple[tuple[str, Any], ...]:
    """``INI``: extra uWSGI options, option name to value (a list repeats the option)."""
    if not isinstance(ini_raw, Mapping):
        raise bad("INI", f"must be a dict of uWSGI option to value, not {ini_raw!r}")
    return tuple((str(k), tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in ini_raw.items())


def _parse_routes(raw: Any, bad: Any) -> tuple[tuple[int | str, str, str | None], ...]:
    """``ROUTES``: ``{target: {"APP": "module:attr", "QUEUE": "name"}}`` where a
    target is a farm name or a mule id (0: the shared queue)."""
    if not isinstance(raw, Mapping):
        raise bad("ROUTES", f"must be a dict of target (farm name or mule id) to {{'APP': ...}}, not {raw!r}")
    routes = []
    for target, spec in raw.items():
        where = f"[{target!r}]"
        if isinstance(target, bool) or not isinstance(target, (int, str)) or target in ("", -1) or (
            isinstance(target, int) and target < 0
        ):
            raise bad("ROUTES", f"key {target!r} must be a farm name or a mule id >= 0")
        if not isinstance(spec, Mapping):
            raise bad("ROUTES", f"{where} must be a dict with 'APP' (and optionally 'QUEUE'), not {spec!r}")
        unknown = sorted(set(spec) - ROUTE_KEYS)
        if unknown:
            raise bad("ROUTES", f"{where} has unknown keys {unknown}; known: {sorted(ROUTE_KEYS)}")
        app = spec.get("APP")
        if not isinstance(app, str) or ":" not in app or not all(app.partition(":")[::2]):
            raise bad("ROUTES", f"{where}['APP'] must name the Celery app as 'module:attribute', not {app!r}")
        queue = spec.get("QUEUE")
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise bad("ROUTES", f"{where}['QUEUE'] must be a non-empty queue name or None, not {queue!r}")
        routes.append((target, app, queue))
    return tuple(routes)


def get_settings() -> MulesSettings:
    """``settings.UWSGI_MULES``, checked (read anew on each call, so
    ``override_settings`` works)."""
    from django.conf import settings

    return parse_settings(getattr(settings, SETTING_NAME, None))
