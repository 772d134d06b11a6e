"""Delivery guarantees: in-flight records, the durable backlog, stop and replay.

- :mod:`.inflight`: each mule records the task it runs in a small shared
  file, so the mule respawned after a crash, a harakiri or an expired mercy
  names the task (and re-queues it when it was offloaded with ``retries``);
- :mod:`.backlog`: offloads still queued when a mule is told to stop are
  written to a private directory (write, fsync, rename) and replayed by the
  next mules;
- :mod:`.stopping`: what a programmed mule does when uWSGI tells it to stop;
- :mod:`.recovery`: what a mule does when it starts (replay, crash report).
"""
