"""Offloads per second through the fake backend (in-process, no uWSGI)."""

from __future__ import annotations

import time


def run_fake(n: int = 50_000, batch: int = 100, profile: bool = False) -> dict:
    from uwsgi_mules.fake import FakeUwsgi

    from bench.apps import tasks, um_tasks

    f = um_tasks.um_work
    payload = tasks.PAYLOAD
    with FakeUwsgi(mules=["uwsgi_mules.mule:run"]) as fake:
        f(0, payload)  # warm-up: task cache, topology
        fake.run_pending()
        rounds = max(1, n // batch)
        send_ns = run_ns = 0
        executed = 0
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter_ns()
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            for i in range(batch):
                f(i, payload)
            t1 = time.perf_counter_ns()
            executed += fake.run_pending()
            send_ns += t1 - t0
            run_ns += time.perf_counter_ns() - t1
        total_ns = time.perf_counter_ns() - start
        if profiler is not None:
            profiler.disable()
    sent = rounds * batch
    result = {
        "offloads": sent,
        "executed": executed,
        "offloads_per_s": sent / (total_ns / 1e9),
        "send_us": send_ns / sent / 1000,
        "run_pending_us": run_ns / sent / 1000,
    }
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run_fake(profile="--profile" in sys.argv), indent=1))
