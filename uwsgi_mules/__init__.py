"""uwsgi-mules: safe, typed and testable uWSGI mules and farms.

>>> from uwsgi_mules import Mule
>>> @Mule(1).offload()
... def resize(image_id: int) -> None: ...
"""

from .errors import (
    BackendUnavailable,
    MessageTooLarge,
    MulesError,
    NotInMule,
    NotOffloadable,
    QueueFull,
    ReservedMessage,
    TopologyError,
    UnknownFarm,
    UnknownMule,
)
from .locks import Lock, LockError
from .runtime.attempts import current_attempt
from .runtime.later import send_call_at
from .runtime.mules import Farm, Mule
from .runtime.offload import TypeMuleFarm, mule_offload
from .runtime.results import RemoteTaskError, ResultsUnavailable, ResultTimeout, UntrustedResult, configure_results
from .runtime.state import Settings, configure, reset_runtime
from .signals import (
    InvalidSchedule,
    InvalidSignal,
    Signal,
    SignalError,
    SignalRegistrationError,
    SignalRoutingWarning,
    SignalTarget,
    UnknownSignalTarget,
    cron,
    file_monitor,
    rb_timer,
    signal_received,
    signal_wait,
    timer,
)
from .spooler import SpoolError, SpoolResult, SpoolValueTooLarge, spool, spooler_handler

__version__ = "0.1.0"


__all__ = [
    "BackendUnavailable",
    "Farm",
    "InvalidSchedule",
    "InvalidSignal",
    "Lock",
    "LockError",
    "MessageTooLarge",
    "Mule",
    "MulesError",
    "NotInMule",
    "NotOffloadable",
    "QueueFull",
    "RemoteTaskError",
    "ReservedMessage",
    "ResultTimeout",
    "ResultsUnavailable",
    "Settings",
    "Signal",
    "SignalError",
    "SignalRegistrationError",
    "SignalRoutingWarning",
    "SignalTarget",
    "SpoolError",
    "SpoolResult",
    "SpoolValueTooLarge",
    "TopologyError",
    "TypeMuleFarm",
    "UnknownFarm",
    "UnknownMule",
    "UnknownSignalTarget",
    "UntrustedResult",
    "configure",
    "configure_results",
    "cron",
    "current_attempt",
    "file_monitor",
    "mule_offload",
    "rb_timer",
    "reset_runtime",
    "send_call_at",
    "signal_received",
    "signal_wait",
    "spool",
    "spooler_handler",
    "timer",
]
