"""Found by autodiscovery; ``record`` has the same bare name as app_two's."""

from uwsgi_mules.contrib.django import offload

RESULTS: list[tuple[str, object]] = []


@offload()
def record(value: object) -> None:
    RESULTS.append(("app_one", value))
