"""Run the demo: a pyuwsgi instance in a child process, then a report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ..config import Section
from ..layout.topology import ENTRY_POINT
from .tasks import DEMO_DIR_ENV, DEMO_SLOW_ENV, TASKS, TASKS_PER_TARGET, metric_options, read_results

#: seconds each task takes with ``--stats`` (so the queues fill and drain visibly)
STATS_TASK_SECONDS = 1.0


def demo_section(workdir: Path, stats: str | None = None) -> Section:
    """The demo instance: 2 workers, mules 1-2 programmed (the ready entry
    point), mule 3 signal-only, farm "reports" = mules 1 and 2; with
    ``stats``, uWSGI's stats server on that address and the demo's queue metrics."""
    section = Section()
    section.main_process.set_basic_params(die_on_term=True, strict=True)
    section.workers.set_basic_params(count=2, enable_threads=True)
    section.networking.register_socket(str(workdir / "demo.sock"))
    section.python.set_wsgi_params(module="uwsgi_mules.demo.wsgi:application")
    section.set_option("disable-logging", True)
    if stats:
        section.set_option("stats", stats)
        section.set_option("enable-metrics", True)
        for metric in metric_options():
            section.set_option("metric", metric, multi=True)
    workers = section.workers
    workers.set_mules_params([ENTRY_POINT, ENTRY_POINT, None], farms=[workers.mule_farm("reports", [1, 2])])
    return section


def run_demo(timeout: float = 60.0, verbose: bool = False, stats: str | None = None) -> int:
    """Start the demo, wait for it to stop by itself, print who ran what.
    With ``stats`` (a ``--stats`` address), show the queues while it runs."""
    try:
        import pyuwsgi  # noqa: F401
    except ImportError:
        print("the demo runs on embedded pyuwsgi: pip install 'uwsgi-mules[demo]'", file=sys.stderr)
        return 2
    if stats:
        from ..monitor.sources.stats_address import StatsError, parse_address

        try:
            parse_address(stats)
        except StatsError as exc:
            print(f"uwsgi-mules demo: --stats: {exc}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="uwsgi-mules-demo-") as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, **{DEMO_DIR_ENV: str(workdir)})
        # run from a checkout, the uWSGI processes import this very uwsgi_mules (not another install)
        package_root = Path(__file__).resolve().parents[2]
        if (package_root / "pyproject.toml").is_file():
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package_root), env.get("PYTHONPATH")) if p)
        if stats:
            env[DEMO_SLOW_ENV] = str(STATS_TASK_SECONDS)
        args = demo_section(workdir, stats).as_args()
        print("starting pyuwsgi: 2 workers, mules 1-2 programmed (uwsgi_mules.mule:run),")
        print("mule 3 signal-only, farm 'reports' = mules 1,2", flush=True)
        if stats:
            print(f"stats server on {stats}; from another terminal: uwsgi-mules stats {stats} --watch 1", flush=True)
        code = "import sys, pyuwsgi; pyuwsgi.run(*sys.argv[1:])"
        log_path = workdir / "uwsgi.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                env=env, cwd=workdir, stdout=None if verbose else log, stderr=subprocess.STDOUT, text=True,
            )
            try:
                _wait(process, timeout, stats)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                print(f"demo did not finish in {timeout:g}s", file=sys.stderr)
        out = "" if verbose else log_path.read_text(errors="replace")
        lines = [ln for ln in out.splitlines() if ln.startswith("  [mule") or " offloaded " in ln]
        if lines:
            print("\n".join(lines))
        results = read_results(workdir / "results.jsonl")
    expected = TASKS_PER_TARGET * len(TASKS)
    print(f"\n{len(results)} of {expected} offloaded calls ran:")
    by_task = Counter((r["task"], r["mule"]) for r in results)
    for (task, mule), count in sorted(by_task.items()):
        print(f"  {task:<14} mule {mule}: {count}")
    if len(results) != expected:
        if out:
            print(out[-3000:], file=sys.stderr)
        return 1
    return 0


def _wait(process: subprocess.Popen[str], timeout: float, stats: str | None) -> None:
    """Wait for the demo to stop; with ``stats``, print its queues every second meanwhile."""
    if not stats:
        process.wait(timeout)
        return
    from ..monitor.sources.stats_address import StatsError, read_stats
    from ..monitor.text_view import queue_rows, render_table

    deadline = time.monotonic() + timeout
    last = ""
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(process.args, timeout)
        try:
            table = render_table(queue_rows(read_stats(stats, timeout=2.0, probe=0.2).data))
        except StatsError:
            table = ""  # not listening yet, or stopping
        if table and table != last:
            print(f"\n{time.strftime('%H:%M:%S')} queues ({stats}):\n{table}", flush=True)
            last = table
        time.sleep(1.0)
