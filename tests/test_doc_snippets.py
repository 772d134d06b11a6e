"""Every Python block of README.md and docs/ runs as written.

One test per block, named ``FILE:LINE`` (the block's first line). The blocks
of a file run in order in one namespace, in a subprocess, inside a world
with the fake uWSGI active (tests/snippets/worlds.py); ``test_*`` functions a
block defines are called with their fixtures. A block that cannot run
standalone is marked just above its fence with
``<!-- snippet: skip (reason) -->`` (keep these rare).

Writing docs: a failure names the block (``docs/x.md:42``) and its
traceback uses the Markdown file's line numbers. A block whose first line
is ``# pkg/module.py`` runs as that module. Names that stand for the
reader's own code (``send_mail``, ...) live in
tests/snippets/world/doc_names.py; the fixtures in worlds.py.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.snippets.blocks import REPO_ROOT, Block, all_blocks, doc_files, python_blocks

BLOCKS = all_blocks()


@functools.cache
def results_of(rel: str) -> dict[str, dict[str, str]]:
    """Run every block of ``rel`` once (in a subprocess) and keep the results."""
    with tempfile.TemporaryDirectory(prefix="doc-snippets-results-") as tmp:
        output = Path(tmp) / "results.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        run = subprocess.run(
            [sys.executable, "-m", "tests.snippets.runner", rel, str(output)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180,
        )
        if run.returncode != 0 or not output.exists():
            crash = f"{rel}: the snippet runner crashed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
            return {"__crash__": {"status": "failed", "message": crash}}
        return json.loads(output.read_text())


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_documented_python_block_runs(block: Block) -> None:
    results = results_of(block.rel)
    missing = {"status": "failed", "message": f"{block.id}: no result (did {block.rel} change after collection?)"}
    result = results.get(block.id) or results.get("__crash__") or missing
    if result["status"] == "skipped":
        pytest.skip(f"{block.id}: {result['message']}")
    if result["status"] != "passed":
        pytest.fail(result["message"], pytrace=False)


def test_every_python_fence_is_found() -> None:
    """No block escapes the extraction (e.g. a ```python fence with trailing text)."""
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        fences = sum(1 for line in text.split("\n") if line.strip().startswith(("```python", "```py")))
        assert len(python_blocks(path)) == fences, path
    assert any(block.rel == "README.md" for block in BLOCKS)
    assert any(block.rel.startswith("docs/") for block in BLOCKS)


def test_extraction_lines_directives_and_modules(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "page.md"
    doc.parent.mkdir()
    doc.write_text(
        "# Title\n"
        "\n"
        "```python\n"          # line 3
        "x = 1\n"              # line 4
        "```\n"
        "\n"
        "<!-- snippet: skip (needs a running uWSGI) -->\n"
        "\n"
        "```python\n"
        "import uwsgi\n"       # line 10
        "```\n"
        "\n"
        "- a list item:\n"
        "\n"
        "  ```py\n"
        "  # pkg/mod.py\n"     # line 16
        "  y = 2\n"
        "  ```\n"
        "<!-- snippet: run-later -->\n"
        "```python\n"
        "z = 3\n"              # line 21
        "```\n"
        "```ini\n"
        "[uwsgi]\n"
        "```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(doc, root=tmp_path)
    assert [b.id for b in blocks] == ["docs/page.md:4", "docs/page.md:10", "docs/page.md:16", "docs/page.md:21"]
    assert blocks[0].skip is None and blocks[0].module is None
    assert blocks[1].skip == "needs a running uWSGI"
    assert blocks[2].source == "# pkg/mod.py\ny = 2" and blocks[2].module == "pkg.mod"
    assert blocks[3].error is not None and "docs/page.md:19" in blocks[3].error
    assert blocks[0].code().split("\n").index("x = 1") == 3  # line 4 of the file
