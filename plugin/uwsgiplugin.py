# Build description read by `uwsgi --build-plugin plugin/` (uWSGI 2.0).
# It produces mules_plugin.so in the current directory; load it with
# `--plugin /path/to/mules_plugin.so`.

NAME = 'mules'

CFLAGS = []
LDFLAGS = []
LIBS = ['-lpthread']
GCC_LIST = ['mules_plugin']
