"""uwsgi-mules: safe, typed and testable uWSGI mules and farms.

>>> from uwsgi_mules import Mule
>>> @Mule(1).offload()
... def resize(image_id: int) -> None: ...

The package is where the two sides of a message meet: the sending side
(:mod:`uwsgi_mules.runtime`) installs the ``mule_msg_hook`` of signal-only
mules through :mod:`uwsgi_mules.core.hook`, and the hook it installs is the
receiving side's (:func:`uwsgi_mules.mule.hook.make_hook`), handed over here,
on the first import of ``uwsgi_mules``, before any offload can be defined.
"""

from .core.attempts import current_attempt
from .core.hook import provide_hook
from .core.state import Settings, configure, reset_runtime
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
from .mule.hook import make_hook
from .runtime.later import send_call_at
from .runtime.mules import Farm, Mule
from .runtime.offload import TypeMuleFarm, mule_offload
from .runtime.results import RemoteTaskError, ResultsUnavailable, ResultTimeout, UntrustedResult, configure_results
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

provide_hook(make_hook)


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
