"""Attacks on the data uwsgi-mules keeps outside the queues (spooled
``@spool`` arguments, results in the cache), run in a worker of real uWSGI
(``POST /call``) or of the fake. Unpickling a gadget calls
:func:`tests.data_gadget.fire`, which leaves a marker file."""

from __future__ import annotations

import pickle

from tests.data_gadget import Gadget
from tests.real.mule_loops.records import record
from tests.support.calls import call_application as application
from uwsgi_mules import decorators as ud
from uwsgi_mules.backends.selection import current_backend
from uwsgi_mules.datakey import DataSigner
from uwsgi_mules.decorators.spool_signing import sign_task, spool_signer
from uwsgi_mules.runtime.results import LocalResult, UntrustedResult

__all__ = ["application"]

RESULTS_CACHE = "uwsgi-mules-results"


@ud.spool(pass_arguments=True)
def add_job(task_id: int, a: int, b: int = 0) -> None:
    record("spooled", task_id=task_id, total=a + b)


def spool_genuine(task_id: int) -> bool:
    add_job(task_id, 1, b=2)
    return True


def spool_forged(kind: str) -> bool:
    """Spool, with raw ``uwsgi.spool``, an ``add_job`` task whose args unpickle into a gadget."""
    import uwsgi

    args = pickle.dumps((Gadget(f"spool-{kind}"),))
    kwargs = pickle.dumps({})
    task = {b"ud_spool_func": b"add_job", b"ud_spool_ret": b"-2", b"args": args, b"kwargs": kwargs}
    if kind == "wrong_key":
        task[b"ud_spool_sig"] = sign_task(DataSigner(b"x" * 32), task)
    elif kind == "altered":  # the genuine signature of other arguments
        task[b"ud_spool_sig"] = sign_task(spool_signer(current_backend()), {**task, b"args": pickle.dumps((7, 1))})
    uwsgi.spool(task)
    return True


def forged_result() -> str:
    """Write a gadget under a result key and read it as a caller would."""
    backend = current_backend()
    key = "uwsgi-mules:forged"
    backend.cache_update(key, pickle.dumps(("ok", Gadget("result"))), 0, RESULTS_CACHE)
    try:
        LocalResult(key, backend, RESULTS_CACHE).result(timeout=1)
    except UntrustedResult as exc:
        return f"refused: {exc}"
    return "accepted"
