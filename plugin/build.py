"""Build the uwsgi-mules plugin with the installed ``uwsgi`` binary.

Usage: ``python plugin/build.py OUTPUT_DIR`` -> ``OUTPUT_DIR/mules_plugin.so``.
Needs the compiled uWSGI (PyPI ``uwsgi``), a C compiler and Python headers;
pyuwsgi cannot build or load plugins.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent


def build(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    local = Path(sys.executable).parent / "uwsgi"
    command = str(local) if local.exists() else shutil.which("uwsgi")
    if command is None:
        raise SystemExit("no uwsgi command: pip install uwsgi")
    result = subprocess.run(
        [command, "--build-plugin", str(PLUGIN_DIR)], cwd=output_dir, capture_output=True, text=True, timeout=600
    )
    built = output_dir / "mules_plugin.so"
    if result.returncode != 0 or not built.exists():
        raise SystemExit(f"plugin build failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(Path(sys.argv[1])))
