"""Functions the contract scenarios run in workers and mules.

Results are appended as JSON lines to ``$MULES_TEST_DIR/records/NAME.jsonl``
so the test process can read what real mules (other processes) did.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

from uwsgi_mules import Farm, Mule, QueueFull, configure, mule_offload
from uwsgi_mules.backends.selection import current_backend


def records_dir() -> Path:
    path = Path(os.environ["MULES_TEST_DIR"]) / "records"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record(name: str, value: Any) -> None:
    line = json.dumps({"mule": Mule.get_current_id(), "pid": os.getpid(), "value": value}) + "\n"
    fd = os.open(records_dir() / f"{name}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


# -- offloaded functions ------------------------------------------------------


@mule_offload(1)
def on_mule1(name: str, value: Any) -> None:
    record(name, value)


@Mule(2).offload()
def on_mule2(name: str, value: Any) -> None:
    record(name, value)


@mule_offload(0)
def on_any_mule(name: str, value: Any) -> None:
    record(name, value)


@Farm("reports").offload()
def on_reports_farm(name: str, value: Any) -> None:
    record(name, value)


@mule_offload("mail")
def on_mail_farm(name: str, value: Any) -> None:
    record(name, value)


@mule_offload(1)
def failing_task(name: str) -> None:
    record(name, "before failure")
    raise RuntimeError("task failed on purpose")


@mule_offload(1)
def later(task_id: int) -> None:
    """Records its id and the time it ran (the backend's clock of due times)."""
    record("later", {"id": task_id, "at": current_backend().wall_time()})


@mule_offload(1, retries=1, retry_on=(TimeoutError,), retry_backoff=0.2, retry_jitter=False)
def until_fixed(task_id: int) -> None:
    """Times out until the file ``fixed`` exists in the test directory."""
    record("until_fixed", {"id": task_id, "at": current_backend().wall_time()})
    if not (Path(os.environ["MULES_TEST_DIR"]) / "fixed").exists():
        raise TimeoutError(f"{task_id}: the service is down")


def send_later(count: int, delay: float) -> float:
    """Offload ``later(0..count-1)`` to run in ``delay`` seconds; returns when they were sent."""
    sent_at = current_backend().wall_time()
    for task_id in range(count):
        assert later.offload_in(delay, task_id)
    return sent_at


def send_until_fixed(task_id: int) -> bool:
    return until_fixed(task_id)


def probe(token: str, path: str, args: tuple[Any, ...]) -> None:
    """Run ``path(*args)`` in this mule and store the pickled outcome."""
    module_name, _, qualname = path.partition(":")  # test harness: any function of the test modules
    func: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        func = getattr(func, part)
    try:
        outcome: tuple[str, Any] = ("ok", func(*args))
    except Exception as exc:
        outcome = ("err", exc)
    target = Path(os.environ["MULES_TEST_DIR"]) / f"probe-{token}.pkl"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(outcome))
    tmp.rename(target)


# -- mule programs ------------------------------------------------------------


def recorder() -> None:
    """A custom programmed mule: records every message it receives."""
    while True:
        handle_recorded(Mule.get_message(farms=True).encode(errors="surrogateescape"))


def handle_recorded(message: bytes) -> bool:
    record("received", message.decode(errors="replace"))
    return True


recorder.handle_message = handle_recorded  # type: ignore[attr-defined]


def sleeper() -> None:
    """A programmed mule that never reads its queue (blocks in farm_get_msg,
    which waits forever in a mule that is in no farm)."""
    current_backend().farm_get_msg()


# -- run in a worker --------------------------------------------------------------


def worker_id() -> int:
    return current_backend().worker_id()


def mule_id() -> int:
    return Mule.get_current_id()


#: registers ``probe`` as a task in every process that imports this module
#: (send_probe decorates it again at run time for the mule it targets)
_probe_task = mule_offload(0)(probe)


def send_probe(mule: int, token: str, path: str, args: tuple[Any, ...]) -> bool:
    return mule_offload(mule)(probe)(token, path, args)


def send_to_mule(mule: int, text: str) -> bool:
    return Mule(mule).send(text)


def send_to_farm(farm: str, text: str) -> bool:
    return Farm(farm).send(text)


def raw_send(message: bytes, target: Any = None) -> Any:
    backend = current_backend()
    return backend.mule_msg(message) if target is None else backend.mule_msg(message, target)


def raw_fill(mule: int, size: int, limit: int = 100_000) -> int:
    """Send ``size``-byte messages to a mule's queue until refused."""
    backend = current_backend()
    for count in range(limit):
        if not backend.mule_msg(b"x" * size, mule):
            return count
    return limit


def typed_fill(mule: int, size: int, timeout: float) -> dict[str, Any]:
    """Send with the typed layer until QueueFull; report what happened."""
    configure(send_timeout=timeout)
    accepted = 0
    started = time.monotonic()
    try:
        while accepted < 100_000:
            Mule(mule).send(b"y" * size)
            accepted += 1
    except QueueFull as exc:
        seconds = time.monotonic() - started
        return {"accepted": accepted, "error": type(exc).__name__, "seconds": seconds, "message": str(exc)}
    return {"accepted": accepted, "error": None, "seconds": time.monotonic() - started}


def queue_depth(mule: int) -> int | None:
    return Mule(mule).queue_depth()


def layout_source() -> str:
    topology = current_backend().topology()
    return topology.source if topology is not None else ""


def farms() -> list[tuple[str, list[int]]]:
    return [(farm.name, [m.id for m in farm.mules]) for farm in Farm.get_farms()]


def offload(task: str, name: str, count: int, start: int = 0) -> int:
    func = globals()[task]
    for number in range(start, start + count):
        func(name, number)
    return count


def get_message_with_timeout(seconds: int) -> tuple[str, float]:
    started = time.monotonic()
    message = Mule.get_message(timeout=seconds)
    return message, time.monotonic() - started


# -- delivery tests (tally in the mule's memory, report once) ---------------------------

_TALLY = {"count": 0, "sum": 0}


@mule_offload(1)
def tally(number: int) -> None:
    _TALLY["count"] += 1
    _TALLY["sum"] += number


@mule_offload(1)
def tally_report(name: str) -> None:
    record(name, dict(_TALLY))


def burst_tally(count: int, start: int) -> int:
    for number in range(start, start + count):
        tally(number)
    return count


@mule_offload(1)
def slow_step(number: int) -> None:
    time.sleep(0.005)
    record("slow", number)


def send_slow(count: int) -> int:
    configure(send_timeout=60)
    for number in range(count):
        slow_step(number)
    return count


def mule1_stats() -> dict[str, Any] | None:
    stats = current_backend().stats()
    if stats is None:
        return None
    counters = stats.queues.get("mule1")
    return None if counters is None else {"received": counters.received, "sent": counters.sent}
