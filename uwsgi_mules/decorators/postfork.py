"""``@postfork`` and the ``post_fork_hook`` that runs the chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends.selection import current_backend
from .state import postfork_chain


def postfork_chain_hook() -> None:
    """uWSGI's ``post_fork_hook``: run every ``@postfork`` callable."""
    for func in list(postfork_chain):
        func()


def install_postfork_hook() -> None:
    """Make :func:`postfork_chain_hook` this process's ``post_fork_hook``,
    keeping a hook the application had set as the first link."""
    backend = current_backend()
    current = backend.get_post_fork_hook()
    if current is postfork_chain_hook:
        return
    if current is not None:
        postfork_chain.insert(0, current)
    backend.set_post_fork_hook(postfork_chain_hook)


def append_to_chain(func: Callable[[], Any]) -> None:
    """Add ``func`` to the post-fork chain and make sure the hook runs it."""
    postfork_chain.append(func)
    install_postfork_hook()


class postfork:  # noqa: N801 - uwsgidecorators' name
    """Run the function in every process uWSGI forks (``@postfork``), or
    only in worker N (``@postfork(N)``)."""

    def __init__(self, f: Callable[[], Any] | int) -> None:
        if callable(f):
            self.wid = 0
            self.f: Callable[[], Any] | None = f
        else:
            self.f = None
            self.wid = int(f)
        append_to_chain(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.f is not None:
            if self.wid > 0 and self.wid != current_backend().worker_id():
                return None
            return self.f()
        self.f = args[0]
        return self
