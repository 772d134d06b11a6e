"""Where the typed layer spends its time, outside uWSGI.

A stand-in ``uwsgi`` module (``mule_msg`` returns True at once,
``mule_get_msg`` returns a prepared envelope) isolates the Python cost of
``mule_offload`` (worker side) and of ``uwsgi_mules.mule:run`` (mule side)
from the socket cost. ``python -m bench.profile_typed [send|mule] [--profile]``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
import types


def stub_uwsgi(message: bytes = b"", limit: int = 0) -> types.ModuleType:
    mod = types.ModuleType("uwsgi")
    state = {"left": limit}

    def mule_get_msg(*args, **kwargs):
        if state["left"] <= 0:
            raise StopIteration
        state["left"] -= 1
        return mod.message

    mod.message = message  # what mule_get_msg returns (set after the key exists)
    mod.mule_msg = lambda msg, target=None: True
    mod.mule_get_msg = mule_get_msg
    mod.mule_id = lambda: 1
    mod.worker_id = lambda: 1
    mod.masterpid = lambda: 0
    mod.opt = {"mule": b"uwsgi_mules.mule:run", "master": True}
    mod.log = lambda line: None
    return mod


def main(argv: list[str]) -> None:
    from uwsgi_mules import envelope
    from uwsgi_mules.backends.real import RealBackend
    from uwsgi_mules.backends.selection import activate
    from uwsgi_mules.layout.topology import TOPOLOGY_ENV, Topology

    os.environ[TOPOLOGY_ENV] = Topology.build(["uwsgi_mules.mule:run"]).to_env_value()
    from bench.apps import tasks, um_tasks

    n = 200_000
    which = argv[0] if argv and not argv[0].startswith("-") else "send"
    import tempfile

    os.environ.setdefault("UWSGIMULES_RUNTIME_DIR", tempfile.mkdtemp(prefix="uwsgi-mules-profile-"))
    stub = stub_uwsgi(b"", n)
    backend = RealBackend(stub, load_plugin=False)
    message = envelope.encode(backend.signer(), um_tasks.um_work.offloading.path, (0, tasks.PAYLOAD), {}, 1)
    stub.message = message
    activate(backend)
    f = um_tasks.um_work
    profiler = cProfile.Profile() if "--profile" in argv else None
    if which == "send":
        f(0, tasks.PAYLOAD)
        t0 = time.perf_counter_ns()
        if profiler:
            profiler.enable()
        for i in range(n):
            f(i, tasks.PAYLOAD)
    else:
        from uwsgi_mules import mule

        t0 = time.perf_counter_ns()
        if profiler:
            profiler.enable()
        try:
            mule.run()
        except StopIteration:
            pass
    elapsed = time.perf_counter_ns() - t0
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
        print(out.getvalue())
    print(f"{which}: {elapsed / n:.0f} ns per call (python-side, stub uwsgi, no profiler overhead)"
          if not profiler else f"{which}: {elapsed / n:.0f} ns per call under cProfile")


if __name__ == "__main__":
    main(sys.argv[1:])
