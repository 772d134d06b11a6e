"""uWSGI's ``uwsgidecorators``, same names and behaviour, safe and testable.

Change ``from uwsgidecorators import timer`` to
``from uwsgi_mules.decorators import timer`` and the code runs under real
uWSGI (or pyuwsgi) and under the fake backend. Every decorator and helper
of the original is here: ``postfork``, ``spool``, ``spoolforever``,
``spoolraw``, ``mulefunc``, ``mule``, ``muleloop``, ``mulemsg``, ``farm``,
``rpc``, ``signal``, ``timer``, ``rbtimer``, ``cron``, ``filemon``,
``erlang``, ``thread``, ``lock``, ``harakiri`` and ``get_free_signal``,
``manage_spool_request``, ``postfork_chain_hook``, ``mule_msg_dispatcher``,
``farm_loop``, ``mule_brain``, ``mule_brainloop``, ``mulemsg_loop``.
Differences from the original, all deliberate:

* nothing happens at import: the spooler callable and ``post_fork_hook``
  are installed by the first decorator that needs them (chaining any
  callable the application had set);
* ``@mulefunc`` is built on :func:`uwsgi_mules.mule_offload`: it works with
  a farm name on Python 3, dispatches by module path (no name collisions)
  and raises instead of dropping a call on a full queue;
* ``@mule``, ``@muleloop``, ``@mulemsg`` and ``@farm`` return the function,
  check the mule id / farm name, and run offloads they receive through the
  runtime (see :mod:`uwsgi_mules.decorators.mules`);
* signal numbers, targets and cron fields are validated (no mod-256 wrap,
  no unknown target silently ignored); registering in a mule raises and in
  a worker warns (see :mod:`uwsgi_mules.signals`);
* spool keys and values must be ``str`` or ``bytes`` (else ``ValueError``,
  as the original gets from uWSGI); keys that collide (``"a"`` and
  ``b"a"``), values over 65,535 bytes and two different spool functions
  with one name raise instead of losing data;
* ``@harakiri`` clears the timer even when the function raises;
  ``@postfork(N)`` returns the decorated object (the original returns None);
* ``@erlang`` raises :class:`ErlangNotSupported`.

Call :func:`reset_decorators` between tests.
"""

from __future__ import annotations

from .misc import harakiri, lock, thread
from .mules import (
    farm,
    farm_loop,
    mule,
    mule_brain,
    mule_brainloop,
    mule_msg_dispatcher,
    mulefunc,
    muleloop,
    mulemsg,
    mulemsg_loop,
    reset_mule_loops,
)
from .postfork import postfork, postfork_chain_hook
from .signaling import ErlangNotSupported, cron, erlang, filemon, get_free_signal, rbtimer, rpc, signal, timer
from .spooling import manage_spool_request, reset_spooling, spool, spool_decorate, spoolforever, spoolraw
from .state import clear_tables, mule_functions, postfork_chain, spooler_functions


def reset_decorators() -> None:
    """Forget every decorated spool, mule and postfork function (tests)."""
    reset_spooling()
    reset_mule_loops()
    clear_tables()


__all__ = [
    "ErlangNotSupported",
    "cron",
    "erlang",
    "farm",
    "farm_loop",
    "filemon",
    "get_free_signal",
    "harakiri",
    "lock",
    "manage_spool_request",
    "mule",
    "mule_brain",
    "mule_brainloop",
    "mule_functions",
    "mule_msg_dispatcher",
    "mulefunc",
    "muleloop",
    "mulemsg",
    "mulemsg_loop",
    "postfork",
    "postfork_chain",
    "postfork_chain_hook",
    "rbtimer",
    "reset_decorators",
    "rpc",
    "signal",
    "spool",
    "spool_decorate",
    "spooler_functions",
    "spoolforever",
    "spoolraw",
    "thread",
    "timer",
]
