"""Tasks of the monitoring tests' instance, all on mule 1.

Every run appends one line ``<kind> <value>`` to ``$MULES_TEST_DIR/ledger.txt``
with a single ``O_APPEND`` write: the tests count runs there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from uwsgi_mules import Mule

#: what the failing task puts in its exception message: the page must show it as text
INJECTED = "<script>document.title='pwned';window.__pwned=1</script> \x1b[31mred\x1b[0m"


def _dir() -> Path:
    return Path(os.environ["MULES_TEST_DIR"])


def ledger(kind: str, value: object) -> None:
    fd = os.open(_dir() / "ledger.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{kind} {value}\n".encode())
    finally:
        os.close(fd)


@Mule(1).offload()
def gate() -> None:
    """Hold mule 1 until the file ``open`` exists (its queue fills meanwhile)."""
    ledger("gate", "in")
    while not (_dir() / "open").exists():
        time.sleep(0.02)


@Mule(1).offload()
def tally(number: int) -> None:
    ledger("tally", number)


@Mule(1).offload()
def later(number: int) -> None:
    ledger("later", number)


@Mule(1).offload(retries=1, retry_on=(RuntimeError,), retry_backoff=0.1, retry_jitter=False)
def fragile(token: str) -> None:
    """Fails until the file ``fixed`` exists (two attempts, then a dead task)."""
    if not (_dir() / "fixed").exists():
        ledger("fragile-failed", token)
        raise RuntimeError(f"{token}: {INJECTED}")
    ledger("fragile-ran", token)
