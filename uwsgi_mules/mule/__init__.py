"""The receiving side: everything a mule does with the messages it reads.

- :mod:`.server`: the programmed mule (``--mule=uwsgi_mules.mule:run``):
  start-up, the receive loop (C ``Signer.serve`` for plain tasks, else one
  Python path), the stop protocol;
- :mod:`.dispatch`: one message, one path: verify, run, report; the
  ``mule_msg_hook`` of signal-only mules;
- :mod:`.delivery`: in-flight records, the backlog saved at a stop, replay;
- :mod:`.requeue` and :mod:`.results`: what the mule sends back through the
  sending side (:mod:`uwsgi_mules.runtime`): re-queued tasks, stored results.
"""

from __future__ import annotations

from .server import ENTRY_POINT, MuleServer, handle_one, run, script_path

__all__ = ["ENTRY_POINT", "MuleServer", "handle_one", "run", "script_path"]
