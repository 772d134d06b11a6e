"""Run the Python blocks of one Markdown file; write one result per block.

Run by tests/test_doc_snippets.py in a subprocess (a fresh interpreter per
file: Django can be set up once only, and blocks import modules)::

    python -m tests.snippets.runner docs/quickstart.md RESULTS.json

The blocks run in order in one namespace, inside the file's world (see
``worlds.py``). After each block, the ``test_*`` functions it defined are
called with the fixtures they name, and what it offloaded runs on the
world's fake. Tracebacks carry the Markdown file's own line numbers.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback
import types
from pathlib import Path
from typing import Any

from .blocks import REPO_ROOT, Block, python_blocks
from .worlds import WORLD_DIR, BlockUnavailable, World, WorldUnavailable, world_for


#: extras a documented block may import; where one is missing the block is skipped
OPTIONAL_PACKAGES = frozenset({"celery", "kombu", "redis", "django", "uwsgiconf"})


def run_file(rel: str) -> dict[str, dict[str, str]]:
    """{block id: {"status": passed|failed|skipped, "message": ...}} for every block of ``rel``."""
    path = REPO_ROOT / rel
    blocks = python_blocks(path)
    workdir = Path(tempfile.mkdtemp(prefix="doc-snippets-"))
    os.chdir(workdir)
    sys.path[:0] = [str(WORLD_DIR), str(workdir)]
    results: dict[str, dict[str, str]] = {}
    try:
        with world_for(rel)(workdir) as world:
            namespace = world.namespace()
            for block in blocks:
                results[block.id] = run_block(block, path, namespace, world)
    except WorldUnavailable as exc:
        for block in blocks:
            results.setdefault(block.id, {"status": "skipped", "message": str(exc)})
    except Exception:  # the world itself failed (set-up or tear-down)
        message = f"{rel}: the snippet world failed:\n{traceback.format_exc()}"
        for block in blocks:
            if results.get(block.id, {}).get("status") != "failed":
                results[block.id] = {"status": "failed", "message": message}
    return results


def run_block(block: Block, path: Path, namespace: dict[str, Any], world: World) -> dict[str, str]:
    if block.error:
        return {"status": "failed", "message": block.error}
    if block.skip:
        return {"status": "skipped", "message": block.skip}
    try:
        code = compile(block.code(), str(path), "exec")
        if block.module:
            _run_as_module(block.module, code, path, namespace)
        else:
            exec(code, namespace)  # noqa: S102 - our own documentation
        for test in _tests_defined_by(block, path, namespace):
            world.call_test(test, namespace)
        world.after_block()
    except BlockUnavailable as exc:
        return {"status": "skipped", "message": str(exc)}
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.partition(".")[0] in OPTIONAL_PACKAGES:
            return {"status": "skipped", "message": f"{exc.name} is not installed here (an optional extra)"}
        return {"status": "failed", "message": f"{block.id}: python block failed:\n{traceback.format_exc()}"}
    except Exception:
        return {"status": "failed", "message": f"{block.id}: python block failed:\n{traceback.format_exc()}"}
    return {"status": "passed", "message": ""}


def _run_as_module(name: str, code: types.CodeType, path: Path, namespace: dict[str, Any]) -> None:
    """Run a ``# pkg/mod.py`` block as module ``pkg.mod`` (importable, relative imports work)."""
    parent, _, leaf = name.rpartition(".")
    if parent:
        _ensure_package(parent)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__package__ = parent
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], leaf, module)
    exec(code, module.__dict__)  # noqa: S102 - our own documentation
    namespace.update({key: value for key, value in vars(module).items() if not key.startswith("__")})


def _ensure_package(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        parent, _, leaf = name.rpartition(".")
        if parent:
            _ensure_package(parent)
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules[name] = package
        if parent:
            setattr(sys.modules[parent], leaf, package)


def _tests_defined_by(block: Block, path: Path, namespace: dict[str, Any]) -> list[Any]:
    last_line = block.line + block.source.count("\n")
    tests = []
    for name, value in list(namespace.items()):
        code = getattr(value, "__code__", None)
        if name.startswith("test") and callable(value) and code is not None and code.co_filename == str(path):
            if block.line <= code.co_firstlineno <= last_line:
                tests.append(value)
    return tests


def main(argv: list[str]) -> int:
    rel, output = argv
    results = run_file(rel)
    Path(output).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
