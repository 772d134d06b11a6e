"""The plain offload of the benchmark (to the shared queue, as the task's "default" queue)."""

from uwsgi_mules.contrib.django import offload


@offload(0)
def work(i: int, s: str) -> None:
    """Runs on the mule; returns nothing."""
