"""A programmed-mule module whose import takes a while (the fake's threaded
start must import it once, before the mule threads run)."""

from __future__ import annotations

import time

from uwsgi_mules.mule import run as _serve

time.sleep(0.3)  # a slow import: a second thread would find the module half initialised

#: how many mule threads entered the program
STARTED: list[int] = []


def run() -> None:
    """Serve offloads like ``uwsgi_mules.mule:run``."""
    STARTED.append(1)
    _serve()
