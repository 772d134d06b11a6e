"""The fake's ``uwsgi.spool`` turns argument values into bytes as uWSGI 2.0
does (``PyObject_Bytes``: ``__bytes__``, buffers, iterables of ints) and
refuses any other value with uWSGI's own ``ValueError``."""

from __future__ import annotations

import pytest

from uwsgi_mules.fake import FakeUwsgi

ONLY_BYTES = "spooler callable dictionary must contains only bytes"


class HasBytes:
    def __bytes__(self) -> bytes:
        return b"from __bytes__"


class BadBytes:
    def __bytes__(self) -> str:  # a __bytes__ that does not return bytes: TypeError in bytes()
        return "not bytes"  # noqa: PLE0308 - wrong on purpose


class RaisingBytes:
    def __bytes__(self) -> bytes:
        raise RuntimeError("no bytes today")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"plain", b"plain"),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
        (HasBytes(), b"from __bytes__"),
        ([104, 105], b"hi"),
    ],
)
def test_spool_value_converted_to_bytes(value: object, expected: bytes) -> None:
    with FakeUwsgi(mules=0, spooler=True) as fake:
        fake.spool({b"key": value})
        assert fake.spooler.tasks[-1].args[b"key"] == expected


@pytest.mark.parametrize("value", [5, True, 1.5, None, "text", BadBytes(), RaisingBytes(), [256]])
def test_spool_value_refused_with_uwsgi_error(value: object) -> None:
    with FakeUwsgi(mules=0, spooler=True) as fake:
        with pytest.raises(ValueError, match=ONLY_BYTES):
            fake.spool({b"key": value})
        assert fake.spooler.tasks == []


def test_spool_key_must_be_bytes() -> None:
    with FakeUwsgi(mules=0, spooler=True) as fake, pytest.raises(ValueError, match=ONLY_BYTES):
        fake.spool({"key": b"value"})
