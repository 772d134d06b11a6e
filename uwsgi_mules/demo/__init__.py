"""``uwsgi-mules demo``: real mules and a farm on embedded pyuwsgi."""
