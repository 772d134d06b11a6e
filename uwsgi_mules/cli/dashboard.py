"""``uwsgi-mules dashboard``: the monitoring page of a running instance, served
standalone (see :mod:`uwsgi_mules.monitor.web`).

It binds 127.0.0.1 unless told otherwise. Actions on dead tasks need the
action token: ``--token``, else ``UWSGIMULES_DASHBOARD_TOKEN``, else one is
made at start and printed; ``--read-only`` turns them off.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DEFAULT_BIND = "127.0.0.1:9292"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``dashboard`` subcommand."""
    page = commands.add_parser(
        "dashboard",
        help="serve a web page (and /metrics) showing the mules, farms, waiting calls and dead tasks",
        description="Serve the monitoring page of a running instance: queues (with the C plugin), what each "
        "mule runs, waiting calls, dead tasks (re-send, delete), and Prometheus metrics at /metrics.",
    )
    page.add_argument("--stats", metavar="ADDRESS", help="the instance's stats server (uWSGI's --stats)")
    page.add_argument("--dir", type=Path, metavar="DIR", help="the instance's runtime directory "
                      "(default: found from the stats server's master pid)")
    page.add_argument("--backlog-dir", type=Path, metavar="DIR",
                      help="the instance's UWSGIMULES_BACKLOG_DIR, when it has one (dead tasks live there)")
    page.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                      help="where to serve the page (default: %(default)s; only this machine)")
    page.add_argument("--token", help="the action token (default: $UWSGIMULES_DASHBOARD_TOKEN, else a new one)")
    page.add_argument("--read-only", action="store_true", help="no actions on dead tasks")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def run(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C; returns the exit status."""
    from ..monitor.web import make_app
    from ..monitor.web.guard import TOKEN_ENV, new_token

    host, _, port_text = args.bind.rpartition(":")
    if not port_text.isdigit():
        print(f"uwsgi-mules dashboard: --bind takes HOST:PORT, not {args.bind!r}", file=sys.stderr)
        return 2
    token = None if args.read_only else (args.token or os.environ.get(TOKEN_ENV) or new_token())
    app = make_app(args.stats, runtime_dir=args.dir, backlog_dir=args.backlog_dir, token=token,
                   read_only=args.read_only)
    server = make_server(host.strip("[]") or "127.0.0.1", int(port_text), app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    print(f"uwsgi-mules dashboard: serving http://{args.bind}/ (metrics at /metrics)", flush=True)
    if token is not None and not (args.token or os.environ.get(TOKEN_ENV)):
        print(f"uwsgi-mules dashboard: action token: {token}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
