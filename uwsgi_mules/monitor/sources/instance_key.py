"""The instance key, read (never created) from a runtime directory: it
verifies the in-flight records and waiting files before anything in them is read."""

from __future__ import annotations

import os
from pathlib import Path

from ...envelope import Signer
from ...instance import open_private_dir, read_key_file


def instance_signer(runtime_dir: Path) -> Signer:
    """The instance's :class:`~uwsgi_mules.envelope.Signer`; ``OSError``
    (``FileNotFoundError``, ``InsecureDirectory``) when it cannot be read."""
    dir_fd = open_private_dir(runtime_dir)
    try:
        return Signer(read_key_file(runtime_dir, dir_fd))
    finally:
        os.close(dir_fd)
