"""Run the demo: a pyuwsgi instance in a child process, then a report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from ..config import Section
from ..topology import ENTRY_POINT
from .tasks import DEMO_DIR_ENV, TASKS, TASKS_PER_TARGET, read_results

def demo_section(workdir: Path) -> Section:
    """The demo instance: 2 workers, mules 1-2 programmed (the ready entry
    point), mule 3 signal-only, farm "reports" = mules 1 and 2."""
    section = Section()
    section.main_process.set_basic_params(die_on_term=True, strict=True)
    section.workers.set_basic_params(count=2, enable_threads=True)
    section.networking.register_socket(str(workdir / "demo.sock"))
    section.python.set_wsgi_params(module="uwsgi_mules.demo.wsgi:application")
    section.set_option("disable-logging", True)
    workers = section.workers
    workers.set_mules_params([ENTRY_POINT, ENTRY_POINT, None], farms=[workers.mule_farm("reports", [1, 2])])
    return section


def run_demo(timeout: float = 60.0, verbose: bool = False) -> int:
    """Start the demo, wait for it to stop by itself, print who ran what."""
    try:
        import pyuwsgi  # noqa: F401
    except ImportError:
        print("the demo runs on embedded pyuwsgi: pip install 'uwsgi-mules[demo]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="uwsgi-mules-demo-") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, **{DEMO_DIR_ENV: str(workdir)})
        args = demo_section(workdir).as_args()
        print("starting pyuwsgi: 2 workers, mules 1-2 programmed (uwsgi_mules.mule:run),")
        print("mule 3 signal-only, farm 'reports' = mules 1,2", flush=True)
        code = "import sys, pyuwsgi; pyuwsgi.run(*sys.argv[1:])"
        output = None if verbose else subprocess.PIPE
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT, text=True,
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            print(f"demo did not finish in {timeout}s", file=sys.stderr)
        lines = [ln for ln in (out or "").splitlines() if ln.startswith("  [mule") or " offloaded " in ln]
        print("\n".join(lines))
        results = read_results(workdir / "results.jsonl")
    expected = TASKS_PER_TARGET * len(TASKS)
    print(f"\n{len(results)} of {expected} offloaded calls ran:")
    by_task = Counter((r["task"], r["mule"]) for r in results)
    for (task, mule), count in sorted(by_task.items()):
        print(f"  {task:<14} mule {mule}: {count}")
    if len(results) != expected:
        if out and not verbose:
            print(out[-3000:], file=sys.stderr)
        return 1
    return 0
