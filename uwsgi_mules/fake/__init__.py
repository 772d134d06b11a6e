"""The fake backend: test code that uses mules without uWSGI."""

from .backend import FakeStopped, FakeUwsgi, ProcessId

__all__ = ["FakeStopped", "FakeUwsgi", "ProcessId"]
