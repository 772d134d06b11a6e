"""Does watching an instance slow its mules down? The drain of a programmed
mule with the monitoring page open (its API polled every second, as the
page does) against the same drain with nobody looking.

    python bench/monitor_bench.py [--uwsgi CMD] [--plugin SO] [--seconds 40] [--k 200]

One uWSGI instance (1 worker with 2 threads, 1 programmed mule, the page
mounted at /mules and served by the instance's own worker: the worst case,
a standalone dashboard runs in another process, a stats server). In rounds,
the mule is held, K calls are queued behind it, the mule is released and
times its K calls itself. The arms alternate in blocks of a few seconds:
"off" (nobody polls), "page" (GET /mules/api/snapshot every second, as the
open page), "page + timings" is the same with ``UWSGIMULES_TASK_STATS=1``
(a second instance; per-task timers in the mule: informative). The rate of
an arm is all its calls over all its drain time (a poll that lands in a
drain counts); the median per round is shown too. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def instance(command: str, workdir: Path, plugin: str | None, timings: bool) -> Iterator[str]:
    """A running instance; yields its base URL."""
    port, stats = _free_port(), f"127.0.0.1:{_free_port()}"
    argv = [command, "--master", "--die-on-term", "--strict", "--http-socket", f"127.0.0.1:{port}",
            "--module", "bench.apps.monitor_app:application", "--single-interpreter", "--manage-script-name",
            "--mount", "/mules=uwsgi_mules.monitor.web.mounted:application", "--processes", "1", "--threads", "2",
            "--mule=uwsgi_mules.mule:run", "--stats", stats, "--enable-metrics", "--disable-logging",
            *(["--plugin", plugin] if plugin else [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env.update(PYTHONPATH=str(REPO), BENCH_MONITOR_DIR=str(workdir), UWSGIMULES_RUNTIME_DIR=str(workdir / "rt"),
               UWSGIMULES_STATS=stats, UWSGIMULES_TASK_MODULES="bench.apps.monitor_app",
               UWSGIMULES_TASK_STATS="1" if timings else "")
    with open(workdir / "uwsgi.log", "wb") as log:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_ready(f"http://127.0.0.1:{port}", workdir, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _wait_ready(url: str, workdir: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "uwsgi.log").read_text(errors="replace")[-3000:])
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/mules/api/snapshot", timeout=5) as response:
                if json.loads(response.read()).get("mules"):
                    return
        time.sleep(0.1)
    raise TimeoutError((workdir / "uwsgi.log").read_text(errors="replace")[-3000:])


class Poller:
    """GET the page's API every second while ``on`` (the open page)."""

    def __init__(self, url: str) -> None:
        self.url = url + "/mules/api/snapshot"
        self.on = threading.Event()
        self.stopped = threading.Event()
        self.polls = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if self.on.is_set():
                with urllib.request.urlopen(self.url, timeout=30) as response:
                    response.read()
                self.polls += 1
            self.stopped.wait(1.0)


def one_round(url: str, workdir: Path, round_id: int, k: int) -> tuple[int, float]:
    with urllib.request.urlopen(f"{url}/fill?round={round_id}&k={k}", timeout=60) as response:
        assert json.loads(response.read())["sent"] == k + 1
    (workdir / f"go-{round_id}").touch()
    done = workdir / f"done-{round_id}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if done.exists():
            count, first, last = done.read_text().split()
            done.unlink()
            (workdir / f"go-{round_id}").unlink()
            return int(count), float(last) - float(first)
        time.sleep(0.001)
    raise TimeoutError(f"round {round_id} did not finish")


def run_arms(url: str, workdir: Path, arms: list[str], seconds: float, k: int, block: float) -> dict[str, dict]:
    """Alternate ``arms`` ("off"/"page") in blocks of ``block`` seconds for ``seconds`` in all."""
    poller = Poller(url)
    blocks: dict[str, list[list[tuple[int, float]]]] = {arm: [] for arm in arms}
    round_id, start = 0, time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            for arm in arms:
                (poller.on.set if arm != "off" else poller.on.clear)()
                block_end = time.monotonic() + block
                rounds = []
                while time.monotonic() < block_end:
                    round_id += 1
                    rounds.append(one_round(url, workdir, round_id, k))
                blocks[arm].append(rounds)
    finally:
        poller.stopped.set()
    return {arm: summary(found) | {"polls": poller.polls if arm != "off" else 0} for arm, found in blocks.items()}


def summary(blocks: list[list[tuple[int, float]]]) -> dict:
    """The rate of each block (all its calls over all its drain time: a poll
    that lands in a drain counts), their median, and the overall rate."""
    rates = [sum(c for c, _ in b) / sum(t for _, t in b) for b in blocks if b and sum(t for _, t in b) > 0]
    calls = sum(c for b in blocks for c, _ in b)
    elapsed = sum(t for b in blocks for _, t in b)
    return {"blocks": len(rates), "calls": calls, "rate": statistics.median(rates) if rates else 0.0,
            "overall": calls / elapsed if elapsed else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uwsgi", default=str(Path(sysconfig.get_path("scripts")) / "uwsgi"))
    parser.add_argument("--plugin", help="the C plugin to load (mules_plugin.so)")
    parser.add_argument("--seconds", type=float, default=40.0, help="per instance (default: %(default)s)")
    parser.add_argument("--k", type=int, default=200, help="calls per round (default: %(default)s)")
    parser.add_argument("--block", type=float, default=2.0, help="seconds per arm before switching")
    parser.add_argument("--timings", action="store_true",
                        help="also a second instance with UWSGIMULES_TASK_STATS=1 (half the seconds)")
    opts = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        for timings in (False, True) if opts.timings else (False,):
            workdir = Path(tmp) / ("timings" if timings else "plain")
            workdir.mkdir()
            with instance(opts.uwsgi, workdir, opts.plugin, timings) as url:
                arms = ["off", "page"]
                measured = run_arms(url, workdir, arms, opts.seconds / (2 if timings else 1), opts.k, opts.block)
                for arm, values in measured.items():
                    results[f"{arm}{' + timings' if timings else ''}"] = values
    print(f"uWSGI {opts.uwsgi}{' + plugin' if opts.plugin else ''}; {opts.k} calls per round, "
          f"arms alternate every {opts.block:g} s")
    print(f"{'arm':<18}{'blocks':>7}{'calls':>10}{'median calls/s':>16}{'overall':>10}{'vs its off':>12}{'polls':>7}")
    for arm, v in results.items():
        base = results["off + timings" if "timings" in arm else "off"]["rate"]
        print(f"{arm:<18}{v['blocks']:>7}{v['calls']:>10}{v['rate']:>16,.0f}{v['overall']:>10,.0f}"
              f"{v['rate'] / base - 1:>+12.1%}{v['polls']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
