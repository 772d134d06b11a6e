"""``python -m uwsgi_mules.cli``: the ``uwsgi-mules`` command."""

import sys

from . import main

sys.exit(main())
