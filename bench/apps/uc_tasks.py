"""The benchmarked functions offloaded with ``uwsgiconf.runtime.mules`` (mule 1)."""

from uwsgiconf.runtime.mules import mule_offload

from . import tasks


@mule_offload(1)
def uc_work(i, s):
    tasks.work(i, s)


@mule_offload(1)
def uc_stamp(t0):
    tasks.stamp(t0)


@mule_offload(1)
def uc_report(path):
    tasks.report(path)


@mule_offload(1)
def uc_tick(r):
    tasks.tick(r)
