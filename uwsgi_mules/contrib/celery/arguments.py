"""Name the argument a serializer refuses (JSON unless pickle is opted in)."""

from __future__ import annotations

import inspect
from typing import Any

from ...core.state import runtime_state
from ...errors import NotOffloadable

#: content types that opt a Celery app in to pickle (``accept_content``)
PICKLE_CONTENT = frozenset({"pickle", "application/x-python-serialize"})


def serializer_for(app: Any) -> str:
    """``pickle`` when the app accepts it (``accept_content``), else the app's
    ``task_serializer`` (``json`` by default)."""
    accepted = {str(c) for c in (app.conf.accept_content or ())}
    return "pickle" if accepted & PICKLE_CONTENT else str(app.conf.task_serializer)


def not_serializable(
    path: str, args: tuple[Any, ...], kwargs: dict[str, Any], serializer: str, cause: Exception
) -> NotOffloadable:
    """A :class:`NotOffloadable` naming the first argument ``serializer`` refuses."""
    from kombu.serialization import dumps

    names = _parameter_names(path)
    culprit = "an argument"
    for index, value in enumerate(args):
        if not _encodes(dumps, value, serializer):
            name = names[index] if index < len(names) else None
            culprit = f"argument {name!r} (position {index})" if name else f"positional argument {index}"
            break
    else:
        for key, value in kwargs.items():
            if not _encodes(dumps, value, serializer):
                culprit = f"argument {key!r}"
                break
    return NotOffloadable(
        f"cannot send {path} to Celery: {culprit} is not {serializer.upper()}-serializable ({cause}). "
        "Pass plain data (ids, strings, numbers, lists, dicts); pickle only if the Celery app opts in "
        "with accept_content=['pickle', ...]"
    )


def _encodes(dumps: Any, value: Any, serializer: str) -> bool:
    from kombu.exceptions import EncodeError, SerializerNotInstalled

    try:
        dumps(value, serializer=serializer)  # kombu raises any encoder failure as EncodeError
    except (EncodeError, SerializerNotInstalled):
        return False
    return True


def _parameter_names(path: str) -> list[str]:
    """The positional parameter names of the task at ``path``; none when it
    is not registered here or has no signature."""
    try:
        func = runtime_state().registry.resolve(path)
        return [
            p.name
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (LookupError, ValueError, TypeError):  # unregistered (TaskNotFound), or no signature
        return []
