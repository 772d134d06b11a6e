"""Exceptions raised by uwsgi-mules.

Every exception derives from :class:`MulesError`. The ones that replace a
``ValueError`` of the raw uWSGI API (or of uwsgiconf) also derive from
``ValueError`` so existing ``except ValueError`` blocks keep working.
"""

from __future__ import annotations


class MulesError(Exception):
    """Base class of every uwsgi-mules error."""


class NotInMule(MulesError, ValueError):
    """A mule-only operation (receiving messages) was called outside a mule."""


class UnknownMule(MulesError, ValueError):
    """A mule id is not configured in this uWSGI instance."""


class UnknownFarm(MulesError, ValueError):
    """A farm name is not configured in this uWSGI instance."""


class QueueFull(MulesError):
    """The target queue stayed full for the whole retry timeout.

    The message was *not* delivered; nothing was silently dropped.
    """


class MessageTooLarge(MulesError, ValueError):
    """The message is larger than the receiver can read in one piece.

    Raw uWSGI accepts such a message and delivers it truncated; uwsgi-mules
    refuses it before sending.
    """


class NotOffloadable(MulesError, TypeError):
    """A function or its arguments cannot be sent to a mule.

    Raised at decoration time for lambdas and nested functions (a mule could
    never import them) and at call time for arguments that cannot be pickled.
    """


class BackendUnavailable(MulesError, RuntimeError):
    """Neither a real uWSGI nor an activated fake backend is available."""


class TopologyError(MulesError, ValueError):
    """A mule/farm layout is invalid (bad mule spec, farm naming a missing mule...)."""


class ReservedMessage(MulesError, ValueError):
    """A plain message that starts like an offload envelope: sending it could
    be taken for an offloaded call, so the typed send refuses it."""
