"""Render the example configs in ``ini/`` from Python (the tests check the
committed files equal this output, so they never drift).

Run: ``python -m examples.render_inis``
"""

from __future__ import annotations

from pathlib import Path

from uwsgi_mules.config import Section
from uwsgi_mules.layout.topology import ENTRY_POINT

INI_DIR = Path(__file__).resolve().parents[1] / "ini"


def _base(module: str) -> Section:
    section = Section()
    section.main_process.set_basic_params(die_on_term=True, strict=True)
    section.python.set_wsgi_params(module=module)
    section.networking.register_socket("127.0.0.1:8000", http=True)
    return section


def django_style() -> Section:
    """A Django-style app: 4 workers loading the app in the master (no
    lazy-apps), 2 programmed mules, 1 signal-only mule, 2 farms."""
    section = _base("examples.simple_app.wsgi:application")
    section.workers.set_basic_params(count=4)
    workers = section.workers
    workers.set_mules_params(
        [ENTRY_POINT, ENTRY_POINT, None],
        farms=[workers.mule_farm("reports", [1, 2]), workers.mule_farm("mail", [3])],
        harakiri_timeout=60,
        reload_mercy=10,
    )
    return section


#: the entry point's script form, relative to the repository root (run uWSGI
#: from there); ``Section`` renders the absolute path of the installed
#: package instead when it is given ENTRY_POINT with lazy-apps
ENTRY_SCRIPT = "uwsgi_mules/mule_script.py"


def lazy_apps() -> Section:
    """The same app with lazy-apps: the script form of the entry point (uWSGI
    2.0 crashes ``module:callable`` mules with lazy-apps) and
    ``shared-import`` so the signal-only mule gets the offload hook."""
    section = _base("examples.simple_app.wsgi:application")
    section.workers.set_basic_params(count=2, lazy_apps=True)
    section.python.set_basic_params(shared_import="examples.simple_app.tasks")
    workers = section.workers
    workers.set_mules_params(
        [ENTRY_SCRIPT, ENTRY_SCRIPT, None],
        farms=[workers.mule_farm("reports", [1, 2]), workers.mule_farm("mail", [3])],
    )
    return section


def big_messages() -> Section:
    """Mules that read up to 128 KiB messages (bigger queues, bigger buffer)."""
    section = _base("examples.simple_app.wsgi:application")
    section.workers.set_basic_params(count=2)
    workers = section.workers
    workers.set_mules_params(
        [ENTRY_POINT, ENTRY_POINT, None],
        farms=[workers.mule_farm("reports", [1, 2]), workers.mule_farm("mail", [3])],
        msg_buffer=212992,
        msg_buffer_recv=131072,
    )
    return section


def demo() -> Section:
    """The smallest useful layout: 2 programmed mules in farm ``reports``."""
    section = _base("examples.simple_app.wsgi:application")
    section.workers.set_basic_params(count=2)
    workers = section.workers
    workers.set_mules_params([ENTRY_POINT, ENTRY_POINT], farms=[workers.mule_farm("reports", 2)])
    return section


EXAMPLES = {
    "demo.ini": demo,
    "django_style.ini": django_style,
    "lazy_apps.ini": lazy_apps,
    "big_messages.ini": big_messages,
}


def main() -> None:
    for name, build in EXAMPLES.items():
        build().write_ini(INI_DIR / name)
        print(f"wrote ini/{name}")


if __name__ == "__main__":
    main()
