"""The receiving side: everything a mule does with the messages it reads.

- :mod:`.loop`: one mule's serving loop (:class:`~.loop.MuleLoop`), the same
  object on real uWSGI, in the fake's step and threaded modes and behind a
  signal-only mule's hook: start-up, the receive loop (C ``Signer.serve`` for
  plain tasks, else one Python path), bounded batches of due calls, duties,
  the stop protocol; :mod:`.server`: the entry point ``run`` (the one place
  that exits the process); :mod:`.hook`: the signal-only mule's
  ``mule_msg_hook``; :mod:`.startup`: a mule whose runtime directory is
  refused waits and retries instead of crash-looping;
- :mod:`.dispatch`: one message, one path: verify, run, report;
- :mod:`.delivery`: in-flight records, the backlog saved at a stop, replay;
- :mod:`.requeue` and :mod:`.results`: what the mule sends back through the
  sending side (:mod:`uwsgi_mules.runtime`): re-queued tasks, stored results.
"""

from __future__ import annotations

from .loop import MuleLoop, StopReport
from .server import ENTRY_POINT, handle_one, run, run_loop, script_path

__all__ = ["ENTRY_POINT", "MuleLoop", "StopReport", "handle_one", "run", "run_loop", "script_path"]
