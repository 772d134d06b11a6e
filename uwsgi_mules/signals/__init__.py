"""Typed uWSGI signals: targets, timers, rb-timers, cron and file monitors.

>>> from uwsgi_mules.signals import Signal, SignalTarget, timer
>>> Signal(17).register(on_17, SignalTarget.mule(2))   # at import, in the master
>>> timer(60, cleanup, SignalTarget.mules())
"""

from .core import Handler, Signal, signal_received, signal_wait
from .errors import (
    InvalidSchedule,
    InvalidSignal,
    SignalError,
    SignalRegistrationError,
    SignalRoutingWarning,
    UnknownSignalTarget,
)
from .schedules import (
    add_cron,
    add_file_monitor,
    add_rb_timer,
    add_timer,
    check_cron,
    cron,
    file_monitor,
    rb_timer,
    timer,
)
from .targets import ACTIVE_WORKERS, MULE, MULES, SPOOLER, WORKER, WORKERS, SignalTarget

__all__ = [
    "ACTIVE_WORKERS",
    "MULE",
    "MULES",
    "SPOOLER",
    "WORKER",
    "WORKERS",
    "Handler",
    "InvalidSchedule",
    "InvalidSignal",
    "Signal",
    "SignalError",
    "SignalRegistrationError",
    "SignalRoutingWarning",
    "SignalTarget",
    "UnknownSignalTarget",
    "add_cron",
    "add_file_monitor",
    "add_rb_timer",
    "add_timer",
    "check_cron",
    "cron",
    "file_monitor",
    "rb_timer",
    "signal_received",
    "signal_wait",
    "timer",
]
