"""The benchmarked functions offloaded with ``uwsgidecorators.mulefunc`` (mule 1).

``@mulefunc(1)`` sends to mule 1's own queue like every other sender here
(plain ``@mulefunc`` would use the shared queue; with one mule that is the
same mule).
"""

from uwsgidecorators import mulefunc

from . import tasks


@mulefunc(1)
def mf_work(i, s):
    tasks.work(i, s)


@mulefunc(1)
def mf_stamp(t0):
    tasks.stamp(t0)


@mulefunc(1)
def mf_report(path):
    tasks.report(path)


@mulefunc(1)
def mf_tick(r):
    tasks.tick(r)
