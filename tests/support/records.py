"""Read files that other processes are still appending to.

Mules and workers append JSON lines to record files while a test reads
them. A reader can see the last line half-written (an append is not atomic
for a concurrent ``read``), so only lines that end with a newline count;
the unfinished tail is read again on the next poll.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def complete_lines(text: str) -> list[str]:
    """The non-empty lines of ``text`` that end with ``\\n`` (a partial last line is left out)."""
    return [line for line in text.split("\n")[:-1] if line]


def read_jsonl(path: Path | str) -> list[Any]:
    """Every complete JSON line of ``path`` ([] when it does not exist yet)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in complete_lines(text)]
