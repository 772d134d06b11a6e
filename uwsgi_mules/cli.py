"""Command line: ``uwsgi-mules demo`` (and ``uwsgi-mules stats``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uwsgi-mules", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run real mules and a farm on embedded pyuwsgi, then exit")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds before the demo is stopped")
    demo.add_argument("--verbose", action="store_true", help="show uWSGI's own output")
    stats = commands.add_parser("stats", help="show mule/farm queue depth and counters of a running uWSGI")
    stats.add_argument("address", help="stats server: host:port, a unix socket path, or http://host:port")
    stats.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    stats.add_argument("--count", type=int, default=0, help="with --watch: stop after this many refreshes")
    args = parser.parse_args(argv)
    if args.command == "stats":
        return _stats(args.address, args.watch, args.count)
    if args.command == "demo":
        from .demo.runner import run_demo

        return run_demo(timeout=args.timeout, verbose=args.verbose)
    parser.error(f"unknown command {args.command}")
    return 2


def _stats(address: str, watch: float | None, count: int) -> int:
    import time

    from .stats_view import queue_rows, read_stats, render_table

    shown = 0
    while True:
        try:
            table = render_table(queue_rows(read_stats(address)))
        except (OSError, ValueError) as exc:
            print(f"cannot read stats from {address}: {exc}", file=sys.stderr)
            return 1
        if watch:
            print("\033[2J\033[H" + time.strftime("%H:%M:%S ") + address, flush=True)
        print(table, flush=True)
        shown += 1
        if not watch or (count and shown >= count):
            return 0
        try:
            time.sleep(watch)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
