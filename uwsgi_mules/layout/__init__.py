"""The layout every part shares: which mules and farms an instance has.

- :mod:`.topology`: mules, farms and message sizes (from a config, the
  command line, the plugin or a fake), the entry point's names;
- :mod:`.uwsgi_args`: reading uWSGI options from argv, INI files and the environment;
- :mod:`.msgpipe`: the kernel's capacity model of a mule queue;
- :mod:`.caches`: ``cache2`` specs (the results cache).
"""
