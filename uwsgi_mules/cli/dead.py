"""``uwsgi-mules dead``: list the dead tasks of an instance and send them again.

Dead tasks live in ``<dir>/dead/`` (see :mod:`uwsgi_mules.mule.delivery.dead`),
``<dir>`` being the backlog directory (``UWSGIMULES_BACKLOG_DIR``) when the
instance has one, else its runtime directory. The command runs outside
uWSGI: re-sending writes the chosen calls as a backlog file into
``<dir>/dead/resend/`` and removes their records; a running programmed
mule of the instance claims that file within about a second when it is
idle (busy mules: after their current burst), or the next start does, and
queues each call to its original target with its attempts reset. Each
record is claimed before it is re-sent (:mod:`uwsgi_mules.mule.delivery.resend`):
two re-sends running at once send every task exactly once between them.

Without ``--dir`` or the variables, the instance directories are searched
where the instance makes them (:func:`uwsgi_mules.instance.runtime_base`:
``$XDG_RUNTIME_DIR/uwsgi-mules``, else ``<tmp>/uwsgi-mules-<uid>``). An
error (a directory of another user, one others can write) is one line on
stderr. Everything a task wrote (its arguments, its exception, its
traceback) is printed with control characters escaped (``\\x1b``, ``\\n``):
an exception message cannot clear the terminal nor print a forged line.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import unicodedata
from pathlib import Path

from ..instance import BACKLOG_DIR_ENV, RUNTIME_DIR_ENV, InsecureDirectory, runtime_base
from ..mule.delivery.backlog import BacklogError
from ..mule.delivery.dead import DeadTask
from ..mule.delivery.dead import list_dead as _list_dead
from ..mule.delivery.resend import resend_once

EXIT_OK = 0
EXIT_UNKNOWN_ID = 1
#: no instance directory found, or the one found cannot be used (one line on stderr says why)
EXIT_NO_DIRECTORY = 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``dead`` subcommand."""
    dead = commands.add_parser(
        "dead",
        help="list dead tasks (given up after their last attempt) and send them again",
        description="List the tasks an instance gave up after their last attempt, show one with its "
        "traceback, or send chosen ones (or all) again to their mule or farm.",
        epilog=f"DIR defaults to ${BACKLOG_DIR_ENV}, else ${RUNTIME_DIR_ENV}, else every instance directory "
        f"under {_default_base()}. A running mule picks re-sent tasks up within about a second while idle; "
        "otherwise the next start does.",
    )
    dead.add_argument("--dir", type=Path, metavar="DIR",
                      help="the instance's backlog directory, or its runtime directory")
    dead.add_argument("--show", metavar="ID", help="print one dead task with its traceback")
    dead.add_argument("--resend", nargs="+", metavar="ID", help="send these dead tasks again")
    dead.add_argument("--resend-all", action="store_true", help="send every dead task again")


def run(args: argparse.Namespace) -> int:
    """Carry out ``uwsgi-mules dead`` with parsed ``args``; returns the exit
    code. A directory that cannot be used is one line on stderr, not a traceback."""
    try:
        return _run(args)
    except InsecureDirectory as exc:
        print(f"uwsgi-mules dead: {escape(str(exc))} (run it as the user the instance runs as, e.g. "
              "sudo -u USER uwsgi-mules dead)", file=sys.stderr)
    except (OSError, BacklogError) as exc:
        print(f"uwsgi-mules dead: {escape(str(exc))}", file=sys.stderr)
    return EXIT_NO_DIRECTORY


def _run(args: argparse.Namespace) -> int:
    bases = _bases(args.dir)
    if not bases:
        print(f"no instance directory found: pass --dir, or set {BACKLOG_DIR_ENV} or {RUNTIME_DIR_ENV}",
              file=sys.stderr)
        return EXIT_NO_DIRECTORY
    if args.show:
        for base in bases:
            for task in list_dead(base):
                if task.id == args.show:
                    print(_details(task))
                    return EXIT_OK
        print(f"no dead task {args.show}", file=sys.stderr)
        return EXIT_UNKNOWN_ID
    if args.resend or args.resend_all:
        return _resend(bases, None if args.resend_all else list(args.resend))
    total = 0
    for base in bases:
        tasks = list_dead(base)
        total += len(tasks)
        if tasks:
            print(f"{escape(str(base))}:")
        for task in tasks:
            print(f"  {_line(task)}")
    print(f"{total} dead task(s)")
    return EXIT_OK


def _resend(bases: list[Path], ids: list[str] | None) -> int:
    if ids is not None:
        known = {task.id for base in bases for task in list_dead(base)}
        missing = [task_id for task_id in ids if task_id not in known]
        if missing:
            print(f"no dead task {', '.join(missing)}; nothing sent", file=sys.stderr)
            return EXIT_UNKNOWN_ID
    sent = 0
    for base in bases:
        for task in resend_once(base, ids, _refused):
            print(f"re-sent {escape(task.id)} {escape(task.call)}")
            sent += 1
    print(f"{sent} dead task(s) queued to be sent again (a running mule sends them within about a second)")
    return EXIT_OK


def list_dead(base: Path) -> list[DeadTask]:
    """The verified dead tasks of ``base``; a record that does not verify is named on stderr."""
    return _list_dead(base, _refused)


def _refused(path: Path, why: str) -> None:
    if not os.path.lexists(path):
        return  # re-sent or dropped by another process meanwhile: nothing to report
    print(f"the dead task record {escape(str(path))} is not read (never re-sent): {escape(why)}", file=sys.stderr)


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control and format character (ANSI escapes,
    carriage returns, bidi overrides, newlines unless ``keep_newlines``)
    written as a Python escape: what a task wrote cannot drive the terminal."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if (char == "\n" and keep_newlines) or char == " " or unicodedata.category(char)[0] not in "CZ":
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _line(task: DeadTask) -> str:
    when = datetime.datetime.fromtimestamp(task.died_at).strftime("%Y-%m-%d %H:%M:%S")
    return f"{escape(task.id)}  {when}  {task.attempts} attempt(s)  {escape(task.call)}  -- {escape(task.error)}"


def _details(task: DeadTask) -> str:
    target = f"farm {task.target.decode(errors='replace')}" if isinstance(task.target, bytes) else (
        f"mule {task.target}" if task.target else "the shared queue")
    trace = escape(task.traceback.rstrip(), keep_newlines=True)
    return (f"{_line(task)}\ntarget: {escape(target)}; retries={task.retries}\n"
            f"{trace or '(no traceback: the task killed its mule)'}")


def _default_base() -> Path:
    """Where the instance makes its runtime directories (as it does: $XDG_RUNTIME_DIR first)."""
    return runtime_base(os.environ.get)


def _bases(given: Path | None) -> list[Path]:
    if given is not None:
        return [given]
    for name in (BACKLOG_DIR_ENV, RUNTIME_DIR_ENV):
        value = os.environ.get(name)
        if value:
            return [Path(value)]
    root = _default_base()
    return sorted(p for p in root.iterdir() if (p / "dead").is_dir()) if root.is_dir() else []
