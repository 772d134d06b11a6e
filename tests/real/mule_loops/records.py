"""Records of the mule-loop app: JSON lines in ``$MULES_TEST_DIR/records``.

``uwsgi`` is looked up at each call, so the drop-in fake of the current
test (or real uWSGI) is the one asked for the process identity.
"""

from __future__ import annotations

import json
import os

#: layout of the app: 6 signal-only mules, farm ``f`` = mule 6
MULES = 6
FARMS = {"f": [6]}


def record(name: str, **fields: object) -> None:
    """Append one record (one short O_APPEND write: atomic across processes)."""
    import uwsgi

    directory = os.path.join(os.environ["MULES_TEST_DIR"], "records")
    os.makedirs(directory, exist_ok=True)
    line = json.dumps({"mule": uwsgi.mule_id(), "worker": uwsgi.worker_id(), "pid": os.getpid(), **fields})
    fd = os.open(os.path.join(directory, f"{name}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
