"""Read uWSGI options from a command line or an INI file, in uWSGI's order.

Every reader returns ``(key, value)`` pairs in the order uWSGI applies them
(``value`` is None for an option given without a value on the command
line), which :meth:`uwsgi_mules.layout.topology.Topology.from_options` turns into a
layout. The real backend uses it when no rendered config told it the layout;
``FakeUwsgi.from_ini`` and ``Section.from_ini`` use the INI reader.

What is reproduced from uWSGI 2.0 (``core/init.c``, ``core/ini.c``):

* the command line is read like ``getopt_long``: ``--mule`` and
  ``--mule-msg-size`` take a value only as ``--mule=x`` (``--mule x.py`` is a
  signal-only mule and ``x.py`` a config file to load); other options take
  the next word even when it starts with ``-``; flags take none; unique
  prefixes of long options and bundled short options (``-Mp4``) work;
* words that are not options are config files loaded *after* every
  command-line option; ``--ini``, ``--include``, ``--inherit``,
  ``--config`` and such words load INI files in place;
* INI files: ``;``/``#`` comment lines, no inline comments, ``key`` alone
  is ``key =``, repeated keys and sections are kept, ``%`` magic variables
  (``%%``, ``%d``, ``%n``...) are substituted, ``file:section`` and
  ``:section`` (the last file) work;
* ``$(VAR)`` in values and ``UWSGI_*`` variables as options, only when an
  ``environ`` is given.

Not reproduced: XML/YAML/JSON configs and URLs (a :class:`TopologyError`
says the layout cannot be read), ``@(file)`` and ``%(placeholder)`` values,
logic options (``for``/``if-*``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence

from ..errors import TopologyError

Option = tuple[str, "str | None"]

#: uWSGI 2.0 options (core and bundled plugins) declared ``optional_argument``
OPTIONAL_ARGUMENT = frozenset(
    """
    check-cache chmod chmod-socket end-for end-if endfor endif exit fastrouter-use-cache
    fastrouter-use-socket http-enable-proxy-protocol http-keepalive http-manage-expect
    http-use-cache http-use-socket ksm log-date log-prefix log-syslog logdate mule
    mule-msg-size need-app plshell pyshell pyshell-oneshot rawrouter-use-cache
    rawrouter-use-socket rbshell snmp ssl-session-use-cache ssl-sessions-use-cache
    ssl-verify-depth sslrouter-use-cache sslrouter-use-socket tuntap-use-credentials
    zabbix-template
    """.split()
)

#: uWSGI 2.0 options (core and bundled plugins) declared ``no_argument``
NO_ARGUMENT = frozenset(
    """
    abstract-socket alarm-list alarms-list auto-procname autoload cache-no-expire
    cache-report-freed-items cache-use-last-modified carbon-name-resolve carbon-no-workers
    carbon-resolve-names carbon-use-metrics catch-exceptions cflags cgi-async-max-attempts
    cgi-close-stdin-on-eof cgi-do-not-kill-on-error cgi-from-docroot cgi-mode cgi-optimize
    cgi-optimized cgi-path-info cheap cheaper-algo-list cheaper-algos-list
    cheaper-busyness-verbose cheaper-list check-static-docroot clock-list clocks-list
    close-on-exec close-on-exec2 command-mode config-py daemons-honour-stdin die-on-idle
    die-on-term disable-logging disable-sendfile disable-write-exception dot-h
    drop-after-apps drop-after-init dump-options early-emperor emperor-graceful-shutdown
    emperor-magic-exec emperor-no-blacklist emperor-nofollow emperor-tyrant
    emperor-tyrant-nofollow enable-metrics enable-proxy-protocol enable-threads
    end-blacklist end-whitelist exit-on-reload fastrouter-cheap
    fastrouter-fallback-on-no-key fiber force-gateway forkptyrouter-cheap freebind
    geoip-use-disk gevent-early-monkey-patch gevent-monkey-patch gevent-wait-for-hub
    greenlet harakiri-no-arh harakiri-verbose help honour-range honour-stdin
    http-auto-chunked http-auto-gzip http-cheap http-chunked-input http-manage-rtsp
    http-manage-source http-raw-body http-websockets https-export-cert if-not-reload
    if-reload ignore-script-name ignore-sigpipe ignore-write-errors imperial-monitor-list
    imperial-monitors-list jailed lazy lazy-apps ldap-schema ldap-schema-ldif log-4xx
    log-5xx log-format-strftime log-master log-master-req-stream log-master-stream
    log-micros log-reopen log-truncate log-x-forwarded-for log-zero logfile-chown
    logformat-strftime logger-list loggers-list loop-list loops-list lua-gc-freq lua-shell
    luashell manage-script-name master master-as-root memory-report metric-dir-restore
    metrics-dir-restore metrics-no-cores nagios never-swap no-default-app no-defer-accept
    no-fd-passing no-harakiri-after-req-hook no-harakiri-arh no-initgroups no-orphans
    no-server no-site no-threads-wait notfound-log paste-logger pcre-jit perl-no-die-catch
    perl-no-plack perl-version persistent-ipcsem php-dump-config plshell-oneshot plugin-list
    plugins-list propagate-touch psgi-enable-psgix-io pty-input pty-log pty-no-isig
    py-call-osafterfork py-call-uwsgi-fork-hooks python-version rawrouter-cheap
    rawrouter-xclient rb-thread rb-threads rbshell-oneshot rbthread rbthreads re-fork
    re-fork-as-root re-fork-post-jail reaper refork refork-as-root refork-post-jail
    reload-on-exception reload-os-env reuse-port router-list routers-list
    rsyslog-split-messages setns-preopen show-config shutdown-sockets single-interpreter
    skip-atexit skip-atexit-teardown skip-zero so-keepalive so-send-timeout so-write-timeout
    socket-send-timeout socket-write-timeout spooler-ordered spooler-quiet ssl-enable-sslv3
    ssl-enable-tlsv1 ssl-enable3 ssl-option ssl-verbose sslrouter-cheap sslrouter-sni
    stackless start-unsubscribed start_response-nodelay static-gzip-all stats-http stats-min
    stats-minified stats-no-cores stats-no-metrics strict subscription-dotsplit
    subscriptions-use-credentials symcall-use-next tcp-fast-open-client tcp-fastopen-client
    tcp-nodelay threaded-logger thunder-lock ugreen unsubscribe-on-graceful-reload usage
    use-abort vacuum version vhost vhost-host write-errors-exception-only wsgi-accept-buffer
    wsgi-accept-buffers wsgi-disable-file-wrapper wsgi-strict zerg-fallback
    """.split()
)

#: short options: letter -> (long name, takes "required"/"optional"/"no" argument)
SHORT_OPTIONS: Mapping[str, tuple[str, str]] = {
    "A": ("sharedarea", "required"), "C": ("chmod-socket", "optional"), "H": ("home", "required"),
    "J": ("test", "required"), "L": ("disable-logging", "no"), "M": ("master", "no"),
    "O": ("optimize", "required"), "Q": ("spooler", "required"), "R": ("max-requests", "required"),
    "S": ("set", "required"), "T": ("enable-threads", "no"), "a": ("abstract-socket", "no"),
    "b": ("buffer-size", "required"), "c": ("cgi-mode", "no"), "d": ("daemonize", "required"),
    "h": ("help", "no"), "i": ("single-interpreter", "no"), "j": ("json", "required"),
    "l": ("listen", "required"), "m": ("memory-report", "no"), "p": ("processes", "required"),
    "r": ("reaper", "no"), "s": ("socket", "required"), "t": ("harakiri", "required"),
    "v": ("max-vars", "required"), "w": ("module", "required"), "x": ("xml", "required"),
    "y": ("yaml", "required"), "z": ("socket-timeout", "required"),
}

#: options that load another config file in place (by its extension)
LOADER_OPTIONS = frozenset({"ini", "include", "inherit", "config"})

#: options that load a config format this module cannot read
UNREADABLE_LOADERS = frozenset({"xml", "xmlconfig", "yaml", "yml", "json", "js", "sqlite", "ldap"})

#: ``UWSGI_*`` environment variables uWSGI does not read as options
_ENV_NOT_OPTIONS = (
    "UWSGI_RELOADS=", "UWSGI_VASSALS_DIR=", "UWSGI_EMPEROR_FD=", "UWSGI_BROODLORD_NUM=",
    "UWSGI_EMPEROR_FD_CONFIG=", "UWSGI_EMPEROR_PROXY=", "UWSGI_JAIL_PID=", "UWSGI_ORIGINAL_PROC_NAME=",
)

#: options known to take a value (every other option not declared above is
#: guessed: it takes the next word unless that word starts with ``-``)
_REQUIRED = LOADER_OPTIONS | UNREADABLE_LOADERS | {
    "mules", "farm", "env", "processes", "workers", "module", "wsgi-file", "socket", "http-socket",
    "pythonpath", "import", "shared-import", "chdir", "home", "touch-mules-reload", "mule-harakiri",
    "mule-reload-mercy", "plugin", "plugins", "threads",
}

_MAX_DEPTH = 10
_ENV_REF = re.compile(r"\$\(([^()]*)\)")


# -- INI ------------------------------------------------------------------------------


def options_from_ini_text(text: str, section: str = "uwsgi", *, path: str | None = None) -> list[Option]:
    """Options of every ``[section]`` of INI text, in order.

    ``%`` magic variables are substituted first, as uWSGI does with the
    whole file (``path`` gives ``%d``, ``%n``...; without it they are empty).
    Nested ``ini = ...`` options are *not* expanded here (see
    :func:`options_from_ini`).
    """
    text = substitute_magic(text, path)
    options: list[Option] = []
    current = ""
    for raw in text.split("\n"):
        line = raw.strip(" \t\r")
        if not line:
            continue
        if line[0] == "[":
            current = line[1:-1]
        elif line[0] in ";#":
            continue
        elif current == section:
            key, _, value = line.partition("=")
            options.append((key.rstrip(" \t\r"), value.strip(" \t\r")))
    return options


def options_from_ini(
    path: str, section: str = "uwsgi", *, environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> list[Option]:
    """Options of ``[section]`` of an INI file (``path:section`` also works),
    with nested config options (``ini``, ``include``...) expanded in place.

    Relative paths are relative to ``cwd`` (default: the current directory),
    as uWSGI opens them relative to its own working directory.
    """
    loader = _Loader(environ, cwd)
    return loader.finish(loader.load_ini(path, depth=0, default_section=section))


def substitute_magic(text: str, path: str | None = None) -> str:
    """Apply uWSGI's ``%X`` magic variables to config text (``%%`` is ``%``,
    ``%(`` starts a placeholder, unknown letters become empty)."""
    if "%" not in text:
        return text
    table = _magic_table(path)
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%" and index + 1 < len(text):
            out.append(table.get(text[index + 1], ""))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _magic_table(path: str | None) -> dict[str, str]:
    table = {"%": "%", "(": "%(", "[": "\033", "v": os.getcwd(), "k": str(os.cpu_count() or 1)}
    table["h"] = socket.gethostname()
    table["u"] = table["U"] = str(os.getuid())
    table["g"] = table["G"] = str(os.getgid())
    if path is None:
        return table
    file, section = _split_section(path)
    full = os.path.abspath(file) if os.path.islink(file) else os.path.realpath(file)
    name = os.path.basename(full)
    directory = os.path.dirname(full)
    table.update(o=path, p=full, s=name, d=directory.rstrip("/") + "/", x=section or "")
    table["c"] = os.path.basename(directory)
    table["e"] = name.rsplit(".", 1)[1] if "." in name else ""
    table["n"] = name.rsplit(".", 1)[0] if "." in name else name
    for number, part in enumerate([p for p in directory.split("/") if p][:10]):
        table[str(number)] = part
    for letter in "odspcenx":
        table[letter.upper()] = table[letter]
    return table


def _split_section(path: str) -> tuple[str, str | None]:
    """``file.ini:section`` -> (``file.ini``, ``section``); no colon -> (path, None)."""
    if ":" not in os.path.basename(path) and not path.startswith(":"):
        return path, None
    file, _, section = path.rpartition(":")
    return file, section or None


# -- command line ------------------------------------------------------------------------


def options_from_argv(
    argv: Sequence[str], *, environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> list[Option]:
    """Options of a uWSGI command line, in the order uWSGI applies them.

    ``argv[0]`` is the program; a Python interpreter running the ``uwsgi``
    launcher (``python .../uwsgi ...``, ``python -m pyuwsgi ...``) is skipped
    as well. With ``environ``, its ``UWSGI_*`` variables come first (as in
    uWSGI) and ``$(VAR)`` in values is replaced. Relative config paths are
    relative to ``cwd`` (default: the current directory).
    """
    loader = _Loader(environ, cwd)
    options = loader.expand(_env_options(environ), depth=0) if environ is not None else []
    words = list(argv[_program_length(argv):])
    parsed, positional = _getopt(words)
    options += loader.expand(parsed, depth=0)
    for word in positional:
        if not word.startswith("["):
            options += loader.load(word, depth=0, option=None)
    return loader.finish(options)


def options_from_environ(environ: Mapping[str, str]) -> list[Option]:
    """``UWSGI_*`` variables that uWSGI reads as options (``UWSGI_MULE_MSG_SIZE``
    is ``mule-msg-size``)."""
    return _env_options(environ)


def _env_options(environ: Mapping[str, str]) -> list[Option]:
    options: list[Option] = []
    for name, value in environ.items():
        entry = f"{name}={value}"
        if name.startswith("UWSGI_") and not entry.startswith(_ENV_NOT_OPTIONS):
            options.append((name[6:].lower().replace("_", "-"), value))
    return options


def process_environ(pid: int | str = "self") -> dict[str, str] | None:
    """The environment process ``pid`` was started with (``/proc/PID/environ``,
    Linux): what uWSGI read its ``UWSGI_*`` options from. None if unreadable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    environ: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name:
            environ.setdefault(name.decode(errors="surrogateescape"), value.decode(errors="surrogateescape"))
    return environ


def opt_value(opt: Mapping[str, object], name: str) -> str | None:
    """The last value of option ``name`` in ``uwsgi.opt`` as text (``""`` for
    a flag given without value), or None when it is not set."""
    if name not in opt:
        return None
    value = opt[name]
    if isinstance(value, list):
        value = value[-1] if value else True
    if value is True or value is None:
        return ""
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else str(value)


def opt_mule_count_bound(opt: Mapping[str, object]) -> int:
    """How many mules ``uwsgi.opt`` proves this instance has at least.

    ``uwsgi.opt`` keeps only the last value of a repeated option, but every
    ``mule`` option adds one mule and every ``mules = N`` adds N: one
    ``mule`` plus the last ``mules`` value is a lower bound.
    """
    bound = 1 if "mule" in opt else 0
    mules = opt_value(opt, "mules")
    if mules:
        try:
            bound += max(0, int(mules))
        except ValueError:
            pass
    return bound


def _program_length(argv: Sequence[str]) -> int:
    """How many leading words start the program rather than pass options."""
    if not argv:
        return 0
    if not os.path.basename(argv[0]).startswith("python"):
        return 1
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        if argv[index] in ("-m", "-c"):
            return index + 2
        index += 2 if argv[index] in ("-X", "-W") else 1
    return index + 1  # the script (the uwsgi launcher)


def _getopt(words: list[str]) -> tuple[list[Option], list[str]]:
    """GNU ``getopt_long`` with permutation: (options, non-option words)."""
    options: list[Option] = []
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            positional += words[index:]
            break
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            kind = _kind(name)
            if sep:
                options.append((name, value))
            elif kind == "required" and index < len(words):
                options.append((name, words[index]))
                index += 1
            elif kind == "unknown" and index < len(words) and not words[index].startswith("-"):
                options.append((name, words[index]))  # an option of an external plugin: guess
                index += 1
            else:
                options.append((name, None))
        elif word.startswith("-") and word != "-":
            index = _short(word[1:], words, index, options)
        else:
            positional.append(word)
    return options, positional


def _short(letters: str, words: list[str], index: int, options: list[Option]) -> int:
    for position, letter in enumerate(letters):
        name, kind = SHORT_OPTIONS.get(letter, (letter, "no"))
        rest = letters[position + 1:]
        if kind == "no":
            options.append((name, None))
            continue
        if rest:
            options.append((name, rest))
        elif kind == "required" and index < len(words):
            options.append((name, words[index]))
            index += 1
        else:
            options.append((name, None))
        break
    return index


def _kind(name: str) -> str:
    if name in NO_ARGUMENT:
        return "no"
    if name in OPTIONAL_ARGUMENT:
        return "optional"
    return "required" if name in _REQUIRED else "unknown"


# -- config loading -------------------------------------------------------------------------


class _Loader:
    """Expands config-loading options in place (one per top-level call)."""

    def __init__(self, environ: Mapping[str, str] | None, cwd: str | None) -> None:
        self.environ = environ
        self.cwd = cwd or os.getcwd()
        self.last_file: str | None = None

    def finish(self, options: list[Option]) -> list[Option]:
        if self.environ is None:
            return options
        return [(key, _expand_env(value, self.environ)) for key, value in options]

    def expand(self, options: Iterable[Option], depth: int) -> list[Option]:
        result: list[Option] = []
        for key, value in options:
            if value and (key in LOADER_OPTIONS or key in UNREADABLE_LOADERS):
                result += self.load(value, depth=depth, option=key)
            else:
                result.append((key, value))
        return result

    def load(self, target: str, depth: int, option: str | None) -> list[Option]:
        """Load ``target`` the way the option (None: a bare word) does."""
        file, _ = _split_section(target)
        unreadable = f"cannot read the mule layout from {target!r} (only INI files are read)"
        if option in UNREADABLE_LOADERS or "://" in target:
            raise TopologyError(unreadable)
        if option == "ini" or file.endswith(".ini") or not file:
            return self.load_ini(target, depth)
        if option is None and not file.endswith((".xml", ".yaml", ".yml", ".json", ".js")):
            raise TopologyError(
                f"uWSGI reads the word {target!r} as a config file and cannot load it "
                f"(a mule program must be given as --mule={target})"
            )
        raise TopologyError(unreadable)

    def load_ini(self, target: str, depth: int, default_section: str = "uwsgi") -> list[Option]:
        if depth > _MAX_DEPTH:
            raise TopologyError(f"config files include each other more than {_MAX_DEPTH} levels deep")
        file, section = _split_section(target)
        file = file or self.last_file or ""
        self.last_file = file
        path = file if os.path.isabs(file) else os.path.join(self.cwd, file)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise TopologyError(f"cannot read config file {file!r}: {exc}") from exc
        section = section or default_section
        options = options_from_ini_text(text, section, path=f"{path}:{section}")
        return self.expand(options, depth=depth + 1)


def _expand_env(value: str | None, environ: Mapping[str, str]) -> str | None:
    """uWSGI's ``$(VAR)`` pass: known variables are replaced, others kept."""
    if not value or "$(" not in value:
        return value
    return _ENV_REF.sub(lambda m: environ.get(m.group(1), m.group(0)), value)
