"""Command line (``python -m uwsgi_mules.cli``): ``uwsgi-mules demo``,
``stats`` (the instance's read model of :mod:`uwsgi_mules.monitor` as
text), ``dashboard``, ``dead`` and ``schedule``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    from ..monitor.sources.stats_address import StatsAddress

DESCRIPTION = """\
Safe, typed and testable uWSGI mules and farms.
Run "uwsgi-mules COMMAND --help" for a command's options.
"""

STATS_EPILOG = """\
ADDRESS is what uWSGI's --stats option was given, in any form:
  127.0.0.1:9191  :9191  [::1]:9191  tcp://host:port   a TCP socket
  /run/app/stats.sock  unix:/path  @name                a unix socket (@: abstract)
  http://127.0.0.1:9191                                 the same, said to be HTTP
Whether the server runs with --stats-http is detected.

The queue metrics come from the uwsgi-mules C plugin (--plugin mules_plugin.so
--enable-metrics) or from the demo (uwsgi-mules demo --stats ADDRESS).

exit status:
  0  the queues were shown
  1  the stats server could not be read
  2  bad arguments
  3  the server answered but publishes no uwsgi-mules metrics
"""

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, EXIT_NO_METRICS = 0, 1, 2, 3


def _envelope_code() -> str:
    """Which implementation signs and opens envelopes here."""
    from ..envelope import PURE_PYTHON_ENV, pure_python_forced, speedups

    if speedups() is not None:
        return "C speedups"
    return f"pure Python: {PURE_PYTHON_ENV} is set" if pure_python_forced() else "pure Python: the C speedups are not built"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uwsgi-mules", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} ({_envelope_code()})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run real mules and a farm on embedded pyuwsgi, then exit",
        description="Start pyuwsgi with 2 programmed mules, 1 signal-only mule and a farm, offload "
        "tasks to them, print which mule ran each, then exit (needs pip install 'uwsgi-mules[demo]').",
    )
    demo.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                      help="stop the demo after this many seconds (default: %(default)g)")
    demo.add_argument("--verbose", action="store_true", help="show uWSGI's own output")
    demo.add_argument(
        "--stats", metavar="ADDRESS",
        help="serve uWSGI's stats on ADDRESS (e.g. 127.0.0.1:9191), slow the tasks down and show the "
        "queues while the demo runs; watch them from another terminal with: uwsgi-mules stats ADDRESS --watch 1",
    )
    stats = commands.add_parser(
        "stats",
        help="show mule/farm queue depth and counters of a running uWSGI",
        description="Read a running uWSGI's stats server and show its mule and farm queues.",
        epilog=STATS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument("address", metavar="ADDRESS", help="the address given to uWSGI's --stats (see below)")
    stats.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    stats.add_argument("--count", type=int, default=0, metavar="N",
                       help="with --watch: stop after N refreshes (default: %(default)s, never)")
    stats.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                       help="give up reading after this many seconds (default: %(default)g)")
    from .dead import add_parser as add_dead_parser
    from .schedule import add_parser as add_schedule_parser

    add_dead_parser(commands)
    add_schedule_parser(commands)
    from .dashboard import add_parser as add_dashboard_parser

    add_dashboard_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "stats":
        if args.watch is not None and args.watch <= 0:
            parser.error("--watch takes a positive number of seconds")
        return show_stats(args.address, watch=args.watch, count=args.count, timeout=args.timeout)
    if args.command == "schedule":
        from .schedule import run as run_schedule

        return run_schedule(args)
    if args.command == "dashboard":
        from .dashboard import run as run_dashboard

        return run_dashboard(args)
    if args.command == "dead":
        from .dead import run as run_dead

        return run_dead(args)
    from ..demo.runner import run_demo

    return run_demo(timeout=args.timeout, verbose=args.verbose, stats=args.stats)


def show_stats(address: str, *, watch: float | None = None, count: int = 0, timeout: float = 5.0) -> int:
    """``uwsgi-mules stats``: print the queue table (refreshed with ``watch``); return the exit status."""
    from ..monitor.sources.stats_address import StatsError, parse_address

    try:
        parsed = parse_address(address)
    except StatsError as exc:
        print(f"uwsgi-mules stats: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _show(parsed, watch, count, timeout)
    except KeyboardInterrupt:  # the usual end of --watch
        return EXIT_OK


def _show(parsed: StatsAddress, watch: float | None, count: int, timeout: float) -> int:
    from ..monitor import InstanceSources, Tracker, take_snapshot
    from ..monitor.sources.stats_address import StatsError, read_stats
    from ..monitor.text_view import missing_metrics_reason, render_snapshot

    shown = 0
    tracker = Tracker()
    while True:
        try:
            reading = read_stats(parsed, timeout=timeout)
        except StatsError as exc:
            print(f"uwsgi-mules stats: cannot read stats: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
        snapshot = take_snapshot(InstanceSources.from_variables(parsed.text, timeout), tracker, reading.data)
        if not snapshot.queues:
            print(f"uwsgi-mules stats: {reading.describe()}: {missing_metrics_reason(reading.data)}", file=sys.stderr)
            return EXIT_NO_METRICS
        if watch:
            print("\033[2J\033[H", end="")
        print(time.strftime("%H:%M:%S ") + reading.describe())
        print(render_snapshot(snapshot), flush=True)
        shown += 1
        if not watch or (count and shown >= count):
            return EXIT_OK
        time.sleep(watch)

