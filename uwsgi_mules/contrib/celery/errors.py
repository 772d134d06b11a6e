"""Errors of the Celery integration."""

from __future__ import annotations

from ...errors import MulesError


class BrokerUnavailable(MulesError, ConnectionError):
    """The broker refused or did not answer within ``send_timeout``: the
    call was *not* sent (nothing is lost silently)."""
