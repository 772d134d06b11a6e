"""``manage.py uwsgi_mules_ini``: print (or write, or check) the project's uWSGI INI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from uwsgi_mules.errors import TopologyError

from ...ini import build_section


class Command(BaseCommand):
    help = (
        "Render the uWSGI INI of this project from settings.UWSGI_MULES "
        "(mules, farms, the INI options) and WSGI_APPLICATION."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="write the INI to this file instead of printing it")
        parser.add_argument(
            "--check", metavar="FILE",
            help="exit with an error if FILE differs from what would be rendered (for CI)",
        )
        parser.add_argument("--section", default="uwsgi", help="INI section name (default: uwsgi)")
        parser.add_argument("--settings-module", help="DJANGO_SETTINGS_MODULE value to render")
        parser.add_argument(
            "--pyuwsgi", nargs="?", const=sys.executable, metavar="PYTHON",
            help="the server is pyuwsgi: render binary-path = PYTHON (default: this interpreter) so that a "
                 "graceful reload keeps the virtualenv",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            section = build_section(settings_module=options["settings_module"])
            if options["pyuwsgi"]:
                section.set_pyuwsgi_interpreter(options["pyuwsgi"])
        except (ImproperlyConfigured, TopologyError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        section.name = options["section"]
        text = section.as_ini()
        if options["check"]:
            path = Path(options["check"])
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                raise CommandError(f"{path} is out of date: run manage.py uwsgi_mules_ini -o {path}")
            self.stdout.write(f"{path} is up to date")
            return
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {options['output']}")
            return
        self.stdout.write(text, ending="")
