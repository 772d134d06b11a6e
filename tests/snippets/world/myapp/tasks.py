"""``myapp/tasks.py`` as the quick start writes it (blocks that show it replace this module)."""

from uwsgi_mules import Farm, Mule, mule_offload


@Mule(1).offload()
def resize_image(image_id: int) -> None: ...


@Farm("reports").offload()
def build_report(report_id: int, *, fmt: str = "pdf") -> None: ...


@mule_offload(0)
def send_email(to: str) -> None: ...


# docs/signals.md imports this module "as before fork" and fires its file monitor
from uwsgi_mules.signals import MULES, SignalTarget, file_monitor, timer  # noqa: E402


def cleanup(signum: int) -> None: ...


def reload_flags(signum: int) -> None: ...


timer(60, cleanup, SignalTarget.mule(1))
file_monitor("/etc/app/flags", reload_flags, MULES)
