"""Storing the outcome of a submitted call (``func.submit(...)``) in the mule.

The record format and the cache are the sending side's
(:func:`uwsgi_mules.runtime.results.store_result`); this is what the mule
does with them: a result that cannot be stored is logged and never kills
the mule.
"""

from __future__ import annotations

from typing import Any

from ..backends.base import Backend
from ..runtime.results import store_result


def store_outcome(backend: Backend, meta: dict[str, Any], *, value: Any = None,
                  exc: BaseException | None = None) -> None:
    """Store the return value (or the exception) of a call whose envelope
    asked for it (``meta["result"]``: the key; ``meta["expires"]``: seconds)."""
    try:
        expires = int(meta.get("expires", 0)) or None
        store_result(str(meta["result"]), value, exc, expires=expires, backend=backend)
    except Exception as error:  # noqa: BLE001 - a result that cannot be stored must not kill the mule
        backend.log(f"uwsgi-mules: the result of a submitted task could not be stored: {error!r}")
