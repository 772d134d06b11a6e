"""Found by autodiscovery; ``record`` has the same bare name as app_one's."""

from uwsgi_mules import Mule
from uwsgi_mules.contrib.django import offload

RESULTS: list[tuple[str, object]] = []


@offload(2)
def record(value: object) -> None:
    RESULTS.append(("app_two", (value, Mule.get_current_id())))
