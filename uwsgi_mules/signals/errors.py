"""Errors and warnings of the signal API."""

from __future__ import annotations

from ..errors import MulesError


class SignalError(MulesError, ValueError):
    """A bad signal number, target or schedule."""


class InvalidSignal(SignalError):
    """A signal number outside 0..255 (raw uWSGI would silently wrap it mod 256)."""


class UnknownSignalTarget(SignalError):
    """A target uWSGI does not route (or a mule/farm/spooler that does not exist)."""


class SignalRegistrationError(SignalError):
    """uWSGI refuses this registration (in a mule, in the spooler, twice in the master)."""


class InvalidSchedule(SignalError):
    """A timer, rb-timer, cron or file monitor uWSGI would not run as meant."""


class SignalRoutingWarning(UserWarning):
    """Legal for uWSGI, but signals will probably not reach the handler you expect."""
