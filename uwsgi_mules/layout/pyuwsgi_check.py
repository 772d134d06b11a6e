"""A warning at start for pyuwsgi in a virtualenv without ``binary-path``.

A reload of uWSGI (``touch-reload``, SIGHUP, ``uwsgi.reload()``)
re-executes its binary path, read from ``/proc/self/exe`` unless
``binary-path`` is set. Under pyuwsgi that is the *base* interpreter the
virtualenv's ``python`` links to: it has no ``pyuwsgi``, so the first reload
stops the instance, with every queued call waiting for a start that never
comes. uWSGI cannot be made to find the virtualenv by itself reliably (the
base interpreter is what the kernel reports), so the start says it, once,
with the exact option to add (``Section.set_pyuwsgi_interpreter()`` renders
it).

Called when the real backend is first created in a process
(:mod:`uwsgi_mules.backends.selection`); it logs in the master (the
application imported before fork, the usual case) or, when the master never
imports uwsgi-mules (``lazy-apps``), in worker 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def binary_path_warning(opt: Mapping[Any, Any], *, under_pyuwsgi: bool, prefix: str, base_prefix: str,
                        executable: str, reexecuted: str) -> str | None:
    """The warning line, or None when a reload keeps the virtualenv (not
    pyuwsgi, not a virtualenv, or ``binary-path`` set)."""
    if not under_pyuwsgi or prefix == base_prefix or not executable:
        return None
    if opt.get("binary-path") or opt.get(b"binary-path"):
        return None
    return (
        f"uwsgi-mules: WARNING pyuwsgi runs in the virtualenv {prefix} without binary-path: the first reload "
        f"(touch-reload, SIGHUP, uwsgi.reload()) re-executes {reexecuted}, which has no pyuwsgi, and the "
        f"instance stops. Add this line to the [uwsgi] section: binary-path = {executable}"
    )


def warn_without_binary_path(uwsgi: ModuleType, log: Callable[[str], None]) -> None:
    """Log :func:`binary_path_warning` in the master (or in worker 1 when the
    master does not run this), never raising."""
    try:
        in_master = int(uwsgi.masterpid()) == os.getpid() if hasattr(uwsgi, "masterpid") else False
        if not in_master and int(getattr(uwsgi, "worker_id", lambda: 0)()) != 1:
            return
        line = binary_path_warning(
            getattr(uwsgi, "opt", None) or {}, under_pyuwsgi="pyuwsgi" in sys.modules, prefix=sys.prefix,
            base_prefix=sys.base_prefix, executable=_virtualenv_python(sys.prefix), reexecuted=_reexecuted(),
        )
    except Exception:  # noqa: BLE001 - a check must never stop a start
        return
    if line is not None:
        log(line)


def _virtualenv_python(prefix: str) -> str:
    """The virtualenv's interpreter (under pyuwsgi ``sys.executable`` may name
    the base one); "" when the virtualenv has none."""
    for name in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        candidate = os.path.join(prefix, "bin", name)
        if os.access(candidate, os.X_OK):
            return candidate
    return ""


def _reexecuted() -> str:
    try:
        return os.readlink("/proc/self/exe")
    except OSError:
        return os.path.realpath(sys.executable)
