"""The sending side: Mule, Farm, mule_offload, sending and its targets,
routes, results and calls due later. What the receiving side needs as well
(the registry, the settings, retry policies, attempts, the hook installer)
is in :mod:`uwsgi_mules.core`."""
