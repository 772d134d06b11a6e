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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo.runner import run_demo

        return run_demo(timeout=args.timeout, verbose=args.verbose)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
