"""The same call, ``work(i, "order-1234567890")``, as a Django task and as an offload."""

from django.tasks import task


@task()
def work(i: int, s: str) -> None:
    """Runs on the mule; returns nothing."""
