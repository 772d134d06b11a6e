"""Signatures of the pickled arguments of ``@spool(pass_arguments=True)``.

uwsgidecorators pickles ``args`` and ``kwargs`` into the spool file and
unpickles them in the spooler: whoever can write a spool file (a local user
with access to the spool directory, or a client of a uwsgi socket reaching
the spooler) would run code there. The drop-in ``@spool`` adds
``ud_spool_sig``: a keyed BLAKE2b tag of every key and value of the task
(the function name, the return code, both pickles, the nonce and spool time
of :mod:`.spool_nonces`, the body and any key given to uWSGI: what the
function receives, whatever keys are present), with the *data key* of the
first spool directory (:mod:`uwsgi_mules.datakey`: the file
``.uwsgi-mules-data.key`` there, which outlives the instance as the spool
files do). The spooler looks the function up and verifies the tag before it
unpickles anything; a task of a ``pass_arguments=True`` function is
refused without a valid tag whatever keys it has (it is never called with
the raw spool dict), and runs once (its nonce is recorded as used).
"""

from __future__ import annotations

import hmac
import struct
import weakref
from collections.abc import Mapping

from ..backends.base import Backend
from ..datakey import DataSigner, data_key

#: the spool key holding the signature (hex)
SIGNATURE_KEY = "ud_spool_sig"

#: what is signed before a task's fields (a tag of other signed data never fits a task)
DOMAIN = b"uwsgi-mules spool task 2\x00"
#: keys left out of the signature: the signature itself, and the file name uWSGI adds when it runs a task
UNSIGNED_KEYS = (SIGNATURE_KEY.encode(), b"spooler_task_name")
#: the names of the ``pass_arguments=True`` functions: their tasks must carry a valid signature
signed_functions: set[str] = set()

#: the data signer of each backend (the key file is read once per process)
_signers: weakref.WeakKeyDictionary[Backend, DataSigner] = weakref.WeakKeyDictionary()


def reset_spool_signers() -> None:
    """Forget the keys read and the signed functions (tests)."""
    _signers.clear()
    signed_functions.clear()


def spool_signer(backend: Backend) -> DataSigner:
    """The signer of ``backend``'s spooled arguments: the data key of its
    first spool directory, or the instance key when the spooler keeps its
    tasks in memory (the fake: they live as long as the instance).

    :raises OSError: the key file cannot be read, created or trusted.
    """
    signer = _signers.get(backend)
    if signer is None:
        directory = backend.spool_key_dir()
        key = data_key(directory) if directory is not None else backend.signer().key
        signer = _signers[backend] = DataSigner(key)
    return signer


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def task_fields(task: Mapping[object, object]) -> list[bytes]:
    """Every key and value of ``task`` but :data:`UNSIGNED_KEYS` (an empty
    body counts as none: uWSGI does not pass one), sorted and
    length-prefixed: no two different tasks give the same bytes."""
    pairs = sorted((_as_bytes(k), _as_bytes(v)) for k, v in task.items())
    fields = [DOMAIN]
    for key, value in pairs:
        if key in UNSIGNED_KEYS or (key == b"body" and not value):
            continue
        fields += [struct.pack("!I", len(key)), key, struct.pack("!I", len(value)), value]
    return fields


def sign_task(signer: DataSigner, task: Mapping[object, object]) -> bytes:
    """The hex signature of a spool task (every key it carries)."""
    return signer.tag(*task_fields(task)).hex().encode()


def verify_task(signer: DataSigner, signature: bytes | None, task: Mapping[object, object]) -> bool:
    """Whether ``signature`` is the one :func:`sign_task` gives for ``task`` (constant time)."""
    if not signature:
        return False
    return hmac.compare_digest(sign_task(signer, task), bytes(signature))
