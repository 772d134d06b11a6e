"""The project's tox plugin: find the Python an env's ``base_python`` names.

The Django 6 envs ask for ``python3.12``. Where that command on PATH is a
pyenv shim that refuses to run because another version is selected, tox
would call the interpreter missing although pyenv has it installed. For such
a version this hook appends the installed interpreter's directory to the end
of tox's PATH (after the shims), so tox's own discovery finds it. Nothing
changes where the command already runs or where no such interpreter exists.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from tox.config.sets import EnvConfigSet
from tox.plugin import impl
from tox.session.state import State

_VERSIONED = re.compile(r"^(?:python)?(\d+\.\d+)$")


@functools.cache
def _runs(command: str) -> bool:
    path = shutil.which(command)
    if path is None:
        return False
    try:
        done = subprocess.run([path, "-c", "pass"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _pyenv_bin_dir(version: str) -> str | None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for interpreter in sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True):
        if os.access(interpreter, os.X_OK):
            return str(interpreter.parent)
    return None


@impl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:  # noqa: ARG001 - the hook's signature
    """Make an installed but shimmed-away ``pythonX.Y`` findable for this env."""
    for name in env_conf["base_python"]:
        match = _VERSIONED.match(name)
        if match is None or _runs(f"python{match[1]}"):
            continue
        directory = _pyenv_bin_dir(match[1])
        if directory is not None and directory not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), directory])
