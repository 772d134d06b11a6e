"""Where one typed offload spends its instructions, step by step, without uWSGI.

``python -m bench.send_steps [N [STEP...]]`` runs each step below N times under
``valgrind --tool=callgrind`` (once with N calls, once with none) and prints
the instructions per call: a count that does not depend on the load of the
machine, unlike a timing. ``python -m bench.send_steps STEP N`` runs one step
in this process and prints its wall time per call instead.

The queue write itself is not counted: ``uwsgi.mule_msg`` is replaced by a C
builtin returning True (the kernel's work is the same for every sender, and
valgrind counts user space only). Steps:

- ``loop``: the empty loop (subtracted from the others);
- ``floor``: the bench's "raw + pickle" row, ``mule_msg(MAGIC + dumps((1,
  path, (i, s), {}), 5), 1)``;
- ``pack``: ``pickle.dumps`` of the envelope's body ``(path, (i, s), {}, 1, None)``;
- ``seal``: the tag of that body (``Signer.tag``, keyed BLAKE2b);
- ``seal_call``: pack + seal + ``PREFIX + tag + body`` in one call;
- ``backend``: ``current_backend()``;
- ``typed``: the offload, ``um_work(i, s)`` (route, pack, seal, send).
"""

from __future__ import annotations

import operator
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

STEPS = ("loop", "floor", "pack", "seal", "seal_call", "backend", "typed")


def _stub_uwsgi() -> types.ModuleType:
    mod = types.ModuleType("uwsgi")
    mod.mule_msg = operator.is_not  # a C function of two arguments returning True
    mod.mule_get_msg = lambda *args: b""
    mod.mule_id = lambda: 0
    mod.worker_id = lambda: 1
    mod.masterpid = lambda: 0
    mod.opt = {"mule": b"uwsgi_mules.mule:run", "master": True}
    mod.log = lambda line: None
    return mod


def _setup() -> tuple[Any, Any]:
    """Activate a real backend over the stub; the offloaded function and the backend."""
    from uwsgi_mules.backends.real import RealBackend
    from uwsgi_mules.backends.selection import activate
    from uwsgi_mules.layout.topology import TOPOLOGY_ENV, Topology

    os.environ[TOPOLOGY_ENV] = Topology.build(["uwsgi_mules.mule:run"]).to_env_value()
    os.environ.setdefault("UWSGIMULES_RUNTIME_DIR", tempfile.mkdtemp(prefix="uwsgi-mules-steps-"))
    backend = RealBackend(_stub_uwsgi(), load_plugin=False)
    activate(backend)
    from bench.apps import um_tasks

    um_tasks.um_work(0, "warm-up")
    return um_tasks.um_work, backend


def _step(name: str) -> Callable[[int], None]:
    """A function running ``n`` calls of step ``name``."""
    from bench.apps.tasks import PAYLOAD
    from uwsgi_mules.backends.selection import current_backend

    func, backend = _setup()
    path = func.offloading.path
    signer = backend.signer()
    dumps, mm, magic = pickle.dumps, operator.is_not, b"\x00uwsgi-mules\x00"
    body = dumps((path, (0, PAYLOAD), {}, 1, None), 5)
    seal_call, tag = signer.seal_call, signer.tag
    loops: dict[str, Callable[[int], None]] = {
        "loop": lambda n: [None for i in range(n)] and None,
        "floor": lambda n: [mm(magic + dumps((1, path, (i, PAYLOAD), {}), 5), 1) for i in range(n)] and None,
        "pack": lambda n: [dumps((path, (i, PAYLOAD), {}, 1, None), 5) for i in range(n)] and None,
        "seal": lambda n: [tag(body) for i in range(n)] and None,
        "seal_call": lambda n: [seal_call(path, (i, PAYLOAD), {}, 1, None) for i in range(n)] and None,
        "backend": lambda n: [current_backend() for i in range(n)] and None,
        "typed": lambda n: [func(i, PAYLOAD) for i in range(n)] and None,
    }
    return loops[name]


def _count(step: str, n: int) -> int:
    """Instructions (user space) of this module running ``step`` ``n`` times."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "bench.send_steps",
         step, str(n)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind summary for {step}: {out.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] in STEPS:
        run = _step(argv[0])
        n = int(argv[1])
        t0 = time.perf_counter_ns()
        run(n)
        if n:
            print(f"{argv[0]}: {(time.perf_counter_ns() - t0) / n:.0f} ns per call")
        return
    n = int(argv[0]) if argv else 10_000
    chosen = ["loop", *[step for step in (argv[1:] or STEPS) if step != "loop"]]
    per_call = {step: (_count(step, n) - _count(step, 0)) / n for step in chosen}
    base = per_call["loop"]
    print(f"instructions per call (callgrind, {n} calls, the empty loop's {base:.0f} subtracted):")
    for step in chosen[1:]:
        print(f"  {step:10s} {per_call[step] - base:8.0f}")
    if "typed" in per_call and "floor" in per_call:
        print(f"  typed / floor: {(per_call['typed'] - base) / (per_call['floor'] - base):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
