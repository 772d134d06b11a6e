"""The benchmark: one command, every measurement, on every uWSGI found.

    python bench/run.py [--uwsgi CMD]... [--plugin auto|none|SO] [--quick] [--json FILE]

Without ``--uwsgi`` it uses, from this interpreter's environment, the
compiled ``uwsgi`` binary and the ``pyuwsgi`` launcher when they exist.
With the binary it also builds ``plugin/`` into a temporary directory and
adds a "+ plugin" column (``--plugin none`` skips it).
Each ``--uwsgi`` names a uWSGI command (the binary, or the script of
pyuwsgi); it must see uwsgi-mules, uwsgiconf and uwsgidecorators. Every
server is started with ``--master --die-on-term --strict`` in its own
process group and always stopped. See bench/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: library labels used in the tables
LABELS = {
    "raw": "raw `uwsgi.mule_msg` (same bytes)",
    "raw_pickle": "raw `mule_msg` + pickle per call",
    "um": "`uwsgi_mules.mule_offload`",
    "mf": "`uwsgidecorators.mulefunc`",
    "uc": "`uwsgiconf` `mule_offload`",
}
#: the mule each library's drain/latency/burst instance runs
MULE_OPTION = {
    "raw": "--mule=bench.apps.mules:raw_loop",
    "raw_args": "--mule=bench.apps.mules:raw_loop_typed_args",
    "um": "--mule=uwsgi_mules.mule:run",
    "mf": "--mule",  # signal-only: uwsgidecorators' mule_msg_hook
    "uc": "--mule",  # signal-only: uwsgiconf's mule_msg_hook
}


class Server:
    """A uWSGI instance on 127.0.0.1, always stopped (process group)."""

    def __init__(self, command: list[str], args: list[str], env: dict[str, str], workdir: Path, name: str):
        self.port = _free_port()
        self.argv = command + ["--master", "--die-on-term", "--strict", "--http-socket", f"127.0.0.1:{self.port}"]
        self.argv += ["--module", "bench.apps.wsgi:application", "--need-app", "--disable-logging"] + args
        self.env = env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
        env.update(self.env)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self._wait_ready(60.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"uWSGI exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            log = self.log()
            if "spawned uWSGI worker" in log and "spawned uWSGI mule" in log:
                with contextlib.suppress(OSError, urllib.error.URLError):
                    self.get("/info", timeout=5)
                    return
            time.sleep(0.05)
        raise TimeoutError(f"uWSGI not ready in {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def get(self, path: str, timeout: float = 120.0) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path}: {exc.read().decode(errors='replace')}") from None

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # mules and workers, whatever happened
        self._log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_report(server: Server, proto: str, workdir: Path, name: str, timeout: float = 60.0) -> dict:
    """Queue ``report`` behind everything sent so far and read what the mule wrote."""
    path = workdir / f"{name}.json"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server.get(f"/report?proto={proto}&path={path}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.02)
    raise TimeoutError(f"mule did not report {name} in {timeout}s:\n{server.log()[-3000:]}")


def _prefill_rate(rep: dict) -> float:
    """Executed/s while the mule drains a full queue: median over rounds
    (a round is one queue-full, ~200-280 calls; the median ignores rounds
    where the VM took the CPU away)."""
    rates = [(r[2] - 1) / ((r[1] - r[0]) / 1e9) for r in rep["rounds"].values() if r[2] > 1 and r[1] > r[0]]
    return statistics.median(rates)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- discovery ---------------------------------------------------------------------------


def flavour_of(command: str) -> str:
    with open(command, "rb") as fh:
        return "binary" if fh.read(4) == b"\x7fELF" else "pyuwsgi"


def discover() -> list[str]:
    found: list[str] = []
    bindir = Path(sys.executable).parent
    for candidate in (bindir / "uwsgi", bindir / "pyuwsgi", shutil.which("uwsgi")):
        if candidate and Path(candidate).exists():
            real = os.path.realpath(candidate)
            if flavour_of(real) not in {flavour_of(c) for c in found}:
                found.append(str(candidate))
    return found


# -- the measurements -----------------------------------------------------------------------


def bench_flavour(command: str, workdir: Path, opts: argparse.Namespace, plugin: str | None) -> dict:
    q = opts.quick
    extra = ["--plugin", plugin] if plugin else []
    res: dict = {"command": command, "plugin": bool(plugin)}
    cmd = [command]

    # 1. per-call cost: one worker, one mule that drains (receive and drop)
    senders = "raw,raw_pickle,um" if plugin else "raw,raw_pickle,um,uc,mf"
    args = ["--processes", "1", "--mule=bench.apps.mules:discard"] + extra
    env = {"BENCH_SENDERS": "raw,um" if plugin else "raw,um,mf,uc"}
    with Server(cmd, args, env, workdir, f"percall{'-plugin' if plugin else ''}") as server:
        res["info"] = server.get("/info")
        n = 5_000 if q else 30_000
        out = server.get(f"/percall?n={n}&batch=100&gap_ms=3&senders={senders}")
        res["percall"] = {
            name: {
                "median_ns": statistics.median(d["batch_ns"]) / 100,
                "mean_ns": sum(d["batch_ns"]) / (100 * len(d["batch_ns"])),
                "refused": d["refused"],
                "calls": 100 * len(d["batch_ns"]),
            }
            for name, d in out.items()
        }

    # 2. drain, latency and burst: one instance per library, 4 workers, 1 mule
    res["libs"] = {}
    if opts.percall_only:
        return res
    for proto in (["raw", "um"] if plugin else ["raw", "raw_args", "um", "mf", "uc"]):
        args = ["--processes", "4", MULE_OPTION[proto]] + extra
        if proto == "raw_args":  # diagnostic: drain only
            with Server(cmd, args, {"BENCH_SENDERS": "raw"}, workdir, "raw-args") as server:
                n = 5_000 if q else 20_000
                server.get(f"/drain?proto=raw&n={n}&mode=prefill")
                rep = wait_report(server, "raw", workdir, "raw-args-drain")
                res["libs"][proto] = {"drain_prefill": {"per_s": _prefill_rate(rep)}}
            continue
        lib: dict = {}
        name = f"{proto}{'-plugin' if plugin else ''}"
        with Server(cmd, args, {"BENCH_SENDERS": proto}, workdir, name) as server:
            lib["info"] = server.get("/info")
            n = 10_000 if q else 50_000
            for mode in (["prefill", "stream"] if proto in ("raw", "um") else ["prefill"]):
                n = (5_000 if mode == "prefill" else 10_000) if q else (20_000 if mode == "prefill" else 50_000)
                sent = server.get(f"/drain?proto={proto}&n={n}&mode={mode}")
                rep = wait_report(server, proto, workdir, f"{name}-drain-{mode}")
                if mode == "prefill":
                    executed = sum(r[2] for r in rep["rounds"].values())
                    per_s = _prefill_rate(rep)
                else:
                    executed = rep["count"]
                    per_s = (rep["count"] - 1) / ((rep["last_ns"] - rep["first_ns"]) / 1e9)
                lib[f"drain_{mode}"] = {"executed": executed, "per_s": per_s, "send": sent}
            n = 500 if q else 2_000
            server.get(f"/latency?sender={proto}&n={n}&gap_us=300")
            rep = wait_report(server, proto, workdir, f"{name}-latency")
            lat = [x / 1000 for x in rep["latencies_ns"]]
            lib["latency_us"] = {
                "n": len(lat), "median": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "max": max(lat),
            }
            total = 20_000 if q else 100_000
            with ThreadPoolExecutor(opts.workers) as pool:
                parts = list(pool.map(
                    lambda _: server.get(f"/burst?sender={proto}&n={total // opts.workers}", timeout=300),
                    range(opts.workers),
                ))
            rep = wait_report(server, proto, workdir, f"{name}-burst")
            sent = sum(p["sent"] for p in parts)
            lib["burst"] = {
                "sent": sent,
                "executed": rep["count"],
                "lost": sent - rep["count"],
                "told_refused": sum(p["refused"] for p in parts),
                "raised": sum(p["errors"] for p in parts),
                "workers": sorted({p["worker"] for p in parts}),
                "send_s": max(p["seconds"] for p in parts),
            }
            if proto == "um":  # the same drain with 1,000 calls held in the mule's waiting room
                n = 20_000 if q else 100_000
                held: dict = {}
                for count in (0, 1_000):
                    if count:
                        server.get(f"/wait?n={count}&seconds=3600")
                        wait_report(server, proto, workdir, f"{name}-held")  # every held call received
                    server.get(f"/drain?proto=um&n={n}&mode=prefill")
                    rep = wait_report(server, proto, workdir, f"{name}-drain-held{count}")
                    held[str(count)] = {"per_s": _prefill_rate(rep),
                                        "executed": sum(r[2] for r in rep["rounds"].values())}
                lib["drain_held"] = held
        res["libs"][proto] = lib
    return res


# -- report ---------------------------------------------------------------------------


def render(results: dict) -> str:
    runs = results["runs"]
    cols = list(runs)
    lines = [f"| measurement | {' | '.join(cols)} |", "| --- |" + " --- |" * len(cols)]

    def row(label: str, fn) -> None:
        cells = []
        for col in cols:
            try:
                cells.append(fn(runs[col]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("n/a")
        lines.append(f"| {label} | {' | '.join(cells)} |")

    def pc(name: str):
        def cell(r: dict) -> str:
            d = r["percall"][name]
            raw = r["percall"]["raw"]["median_ns"]
            refused = f", {d['refused']} refused" if d["refused"] else ""
            return f"{d['median_ns']:.0f} ns ({d['median_ns'] / raw:.2f}x{refused})"
        return cell

    lines.append(f"| **per call** (median of 100-call batches; ratio to raw) |{' |' * len(cols)}")
    for name in ("raw", "raw_pickle", "um", "uc", "mf"):
        row(LABELS[name], pc(name))
    lines.append(f"| **drain**: queue filled while the mule is paused (executed/s; ratio to raw) |{' |' * len(cols)}")

    def drain(proto: str, mode: str):
        def cell(r: dict) -> str:
            base = r["libs"]["raw"][f"drain_{mode}"]["per_s"]
            v = r["libs"][proto][f"drain_{mode}"]["per_s"]
            return f"{v:,.0f}/s ({v / base:.0%})"
        return cell

    row("raw `mule_get_msg` loop + unpickle + call", drain("raw", "prefill"))
    row("`uwsgi_mules.mule:run`", drain("um", "prefill"))
    row("(diagnostic) raw loop receiving with `mule:run`'s arguments", drain("raw_args", "prefill"))
    row("signal-only mule + uwsgidecorators hook", drain("mf", "prefill"))
    row("signal-only mule + uwsgiconf hook", drain("uc", "prefill"))
    lines.append(f"| **waiting calls**: 100k drained as above by `mule:run` (executed/s) |{' |' * len(cols)}")

    def held(count: str):
        def cell(r: dict) -> str:
            found = r["libs"]["um"]["drain_held"]
            v = found[count]["per_s"]
            return f"{v:,.0f}/s ({v / found['0']['per_s']:.0%})"
        return cell

    row("no call waiting", held("0"))
    row("1,000 calls waiting (`offload_in(3600)`), ratio to none", held("1000"))
    lines.append(f"| **end to end**: 1 worker streams, 1 mule runs (executed/s) |{' |' * len(cols)}")
    row("raw `mule_msg` (retry on full) -> raw loop", drain("raw", "stream"))
    row("`mule_offload` -> `uwsgi_mules.mule:run`", drain("um", "stream"))
    lines.append(f"| **latency** worker->mule, median / p99 |{' |' * len(cols)}")
    for proto in ("raw", "um", "mf", "uc"):
        row(LABELS[proto].replace(" (same bytes)", " (pickle + send)"),
            lambda r, p=proto: "{median:.0f} / {p99:.0f} us".format(**r["libs"][p]["latency_us"]))
    lines.append(f"| **burst** of 100k into 1 mule: lost (told the sender) |{' |' * len(cols)}")
    for proto in ("raw", "mf", "uc", "um"):
        def cell(r: dict, p: str = proto) -> str:
            b = r["libs"][p]["burst"]
            told = b["told_refused"] + b["raised"]
            return f"{b['lost']:,} of {b['sent']:,} ({told:,}); {b['send_s']:.1f} s"
        row(LABELS[proto].replace(" (same bytes)", ""), cell)
    fake = results.get("fake")
    if fake:
        lines.append("")
        lines.append(
            f"Fake backend (`FakeUwsgi`, offload + `run_pending()` in batches of 100, no uWSGI): "
            f"**{fake['offloads_per_s']:,.0f} offloads/s** ({fake['send_us']:.2f} us to offload, "
            f"{fake['run_pending_us']:.2f} us to run, per call)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uwsgi", action="append", help="uWSGI command to benchmark (repeatable)")
    parser.add_argument(
        "--plugin", default="auto",
        help="uwsgi-mules C plugin for the 'with plugin' column (binary only): a .so path, 'auto' "
             "(default: build plugin/ with the binary into a temp dir) or 'none'",
    )
    parser.add_argument("--workers", type=int, default=4, help="workers sending the burst (default 4)")
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke test)")
    parser.add_argument("--json", help="also write raw results to this file")
    parser.add_argument("--no-fake", action="store_true")
    parser.add_argument("--percall-only", action="store_true",
                        help="only the per-call rows (about 20 s per column; implies --no-fake)")
    opts = parser.parse_args(argv)
    # a SIGTERM must still stop every server (the context managers run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    commands = opts.uwsgi or discover()
    if not commands:
        parser.error("no uWSGI found: install uwsgi and/or pyuwsgi, or pass --uwsgi")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    results: dict = {"runs": {}, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="uwsgi-mules-bench-") as tmp:
        workdir = Path(tmp)
        for command in commands:
            kind = flavour_of(os.path.realpath(command))
            plugin = None
            if kind == "binary" and opts.plugin != "none":
                plugin = opts.plugin if opts.plugin != "auto" else build_plugin(command, workdir, results)
            variants = [None] + ([plugin] if plugin else [])
            for plugin in variants:
                t0 = time.monotonic()
                res = bench_flavour(command, workdir, opts, plugin)
                version = res["info"]["uwsgi_version"]
                label = f"{'pyuwsgi' if kind == 'pyuwsgi' else 'uwsgi binary'} {version}"
                if plugin:
                    label += " + plugin" if res["info"].get("plugin") else " + plugin (NOT loaded by uwsgi_mules)"
                res["seconds"] = time.monotonic() - t0
                results["runs"][label] = res
                print(f"# {label}: {res['seconds']:.0f} s", file=sys.stderr)
    if not opts.no_fake and not opts.percall_only:
        from bench.fake_bench import run_fake

        results["fake"] = run_fake(10_000 if opts.quick else 50_000)
    results["seconds"] = time.monotonic() - started
    results["load"] = (load_before, os.getloadavg()[0])
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))
    print(f"{results['date']}; {results['machine']}; total {results['seconds']:.0f} s; "
          f"1-min load average {results['load'][0]:.1f} before, {results['load'][1]:.1f} after\n")
    print(render(results))
    if results.get("plugin_note"):
        print(f"\nPlugin: {results['plugin_note']}")
    return 0


def build_plugin(command: str, workdir: Path, results: dict) -> str | None:
    """Build plugin/ with this uwsgi binary into ``workdir``; None if it fails."""
    source = REPO / "plugin"
    if not (source / "uwsgiplugin.py").exists():
        results["plugin_note"] = "no plugin/ sources"
        return None
    build = workdir / "plugin-build"
    build.mkdir(exist_ok=True)
    try:
        proc = subprocess.run([command, "--build-plugin", str(source)], cwd=build, capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        results["plugin_note"] = f"plugin build failed: {exc}"
        return None
    built = sorted(build.glob("*_plugin.so"))
    if proc.returncode != 0 or not built:
        results["plugin_note"] = f"plugin build failed: {(proc.stdout + proc.stderr)[-500:]}"
        return None
    return str(built[0])


def machine() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
