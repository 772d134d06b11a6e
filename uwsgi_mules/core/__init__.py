"""What the sending side (:mod:`uwsgi_mules.runtime`) and the receiving side
(:mod:`uwsgi_mules.mule`) both need, importing neither of them:

- :mod:`.registry`: the registry of offloadable tasks (what a mule may run);
- :mod:`.state`: the process-wide settings, the registry and the retry
  policies of the registered tasks (:func:`~.state.runtime_state`);
- :mod:`.retry_policy`: :class:`~.retry_policy.RetryPolicy` and the one retry
  decision, :func:`~.retry_policy.decide`;
- :mod:`.attempts`: which attempt of a task is running;
- :mod:`.hook`: installing the ``mule_msg_hook`` of signal-only mules (the
  sending side installs it where it defines or sends offloads; the receiving
  side provides the hook).
"""
