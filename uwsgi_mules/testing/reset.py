"""Put the module state of uwsgi-mules back as a fresh process has it."""

from __future__ import annotations

from ..backends.selection import reset_backends
from ..core.state import reset_runtime
from ..decorators import reset_decorators
from ..mule.dispatch import reset_dispatchers
from ..mule.hook import reset_hooked_loops
from ..runtime.results import reset_results
from ..runtime.routing import reset_routes


def reset_state(*, definitions: bool = False) -> None:
    """Forget what a process configured or cached: the send settings
    (``configure``), the result settings (``configure_results``) and the
    result-cache checks, the routes to Celery, the dispatchers (their
    counters and in-flight records), the loops of signal-only mules and every activated backend.

    Registered tasks stay: they are definitions, made once when their module
    is imported. With ``definitions=True`` the uwsgidecorators tables (spool
    functions, mule loops, the post-fork chain) are forgotten too, as when
    the drop-in ``uwsgi`` module is installed anew.
    """
    reset_runtime()
    reset_results()
    reset_routes()
    reset_dispatchers()
    reset_hooked_loops()
    reset_backends()
    if definitions:
        reset_decorators()
