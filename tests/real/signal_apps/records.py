"""Processes write what happened to JSON lines in $MULES_TEST_DIR/records."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.support.records import read_jsonl
from uwsgi_mules.backends.selection import current_backend


def workdir() -> Path:
    return Path(os.environ["MULES_TEST_DIR"])


def identity() -> dict[str, Any]:
    backend = current_backend()
    return {
        "mule": backend.mule_id(),
        "worker": backend.worker_id(),
        "spooler": backend.i_am_the_spooler(),
        "pid": os.getpid(),
        "t": backend.now(),
    }


def record(name: str, **fields: Any) -> None:
    """Append one record (one short O_APPEND write: atomic across processes)."""
    directory = workdir() / "records"
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps({**identity(), **fields}) + "\n"
    fd = os.open(directory / f"{name}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_records(name: str) -> list[dict[str, Any]]:
    return read_jsonl(workdir() / "records" / f"{name}.jsonl")
