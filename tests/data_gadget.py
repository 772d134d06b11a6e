"""A pickle gadget for the security tests: unpickling it calls :func:`fire`
(a harmless stand-in for ``os.system``)."""

from __future__ import annotations

import os
from typing import Any

#: labels of the gadgets that ran in this process
FIRED: list[str] = []
#: when set, a gadget also creates this file (to see it from another process)
MARKER_ENV = "UWSGIMULES_TEST_GADGET_MARKER"


def fire(label: str) -> str:
    FIRED.append(label)
    marker = os.environ.get(MARKER_ENV)
    if marker:
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(label + "\n")
    return label


class Gadget:
    """Unpickles into a call of :func:`fire`."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __reduce__(self) -> tuple[Any, ...]:
        return (fire, (self.label,))
