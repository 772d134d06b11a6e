"""Where the read model's figures come from, one module per source:

- :mod:`.stats_address`: uWSGI's stats server (every form of its address);
- :mod:`.queue_metrics`: the queue counters in its metrics (the C plugin's, or declared ones);
- :mod:`.instance_key`: the instance key in the runtime directory (to verify records);
- :mod:`.mule_files`: each mule's in-flight record and heartbeat file;
- :mod:`.waiting_files`: the calls each mule holds until their time;
- :mod:`.dead_records`: the dead tasks.
"""
