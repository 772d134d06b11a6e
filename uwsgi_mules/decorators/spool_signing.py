"""Signatures of the pickled arguments of ``@spool(pass_arguments=True)``.

uwsgidecorators pickles ``args`` and ``kwargs`` into the spool file and
unpickles them in the spooler: whoever can write a spool file (a local user
with access to the spool directory, or a client of a uwsgi socket reaching
the spooler) would run code there. The drop-in ``@spool`` adds
``ud_spool_sig``: a keyed BLAKE2b tag of the function name, the return code
and both pickles, with the *data key* of the first spool directory
(:mod:`uwsgi_mules.datakey`: the file ``.uwsgi-mules-data.key`` there, which
outlives the instance as the spool files do). The spooler looks the function
up and verifies the tag before it unpickles anything.
"""

from __future__ import annotations

import hmac
import struct
import weakref

from ..backends.base import Backend
from ..datakey import DataSigner, data_key

#: the spool key holding the signature (hex)
SIGNATURE_KEY = "ud_spool_sig"

#: the data signer of each backend (the key file is read once per process)
_signers: weakref.WeakKeyDictionary[Backend, DataSigner] = weakref.WeakKeyDictionary()


def reset_spool_signers() -> None:
    """Forget the keys read (tests)."""
    _signers.clear()


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


def _fields(func: bytes, ret: bytes, args: bytes, kwargs: bytes) -> list[bytes]:
    # every field length-prefixed: no two different tasks give the same bytes
    return [struct.pack("!I", len(part)) + part for part in (func, ret, args, kwargs)]


def sign(signer: DataSigner, func: bytes, ret: bytes, args: bytes, kwargs: bytes) -> bytes:
    """The hex signature of a spooled call."""
    return signer.tag(*_fields(func, ret, args, kwargs)).hex().encode()


def verify(signer: DataSigner, signature: bytes | None, func: bytes, ret: bytes, args: bytes, kwargs: bytes) -> bool:
    """Whether ``signature`` is the one :func:`sign` gives (constant time)."""
    if not signature:
        return False
    return hmac.compare_digest(sign(signer, func, ret, args, kwargs), bytes(signature))
