"""The benchmarked functions offloaded with uwsgi-mules (mule 1)."""

from uwsgi_mules import mule_offload

from . import tasks


@mule_offload(1)
def um_work(i: int, s: str) -> None:
    tasks.work(i, s)


@mule_offload(1)
def um_stamp(t0: int) -> None:
    tasks.stamp(t0)


@mule_offload(1)
def um_report(path: str) -> None:
    tasks.report(path)


@mule_offload(1)
def um_tick(r):
    tasks.tick(r)
