"""Find the Python blocks of the Markdown documentation.

A block is a fenced code block whose info string is ``python`` (or ``py``).
An HTML comment on the line just above the fence (blank lines allowed) can
say how to treat it:

* ``<!-- snippet: skip (why it cannot run standalone) -->``: not run (the
  reason is required and shown as the skip reason).

A block whose first line is a comment naming a Python file
(``# myapp/tasks.py``) is that module: it runs as module ``myapp.tasks``,
so other blocks can import it and its relative imports work.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: the Markdown files whose Python blocks must run
DOC_GLOBS = ("README.md", "docs/*.md", "docs/**/*.md")

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[\w+-]*)")
_DIRECTIVE = re.compile(r"^\s*<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*\((?P<reason>.+)\)$")
_MODULE_HEADER = re.compile(r"^#\s*(?P<path>[A-Za-z_][\w/]*\.py)\s*$")


class SnippetSyntaxError(ValueError):
    """A snippet directive that cannot be understood."""


@dataclass(frozen=True)
class Block:
    """One Python block of a Markdown file."""

    rel: str  # path relative to the repository, e.g. "docs/quickstart.md"
    line: int  # line number (1-based) of the block's first code line
    source: str
    skip: str | None = None  # reason, when marked skip
    error: str | None = None  # a bad directive, reported as the block's failure

    @property
    def id(self) -> str:
        return f"{self.rel}:{self.line}"

    @property
    def module(self) -> str | None:
        """Dotted module name when the first line names a file (``# pkg/mod.py``)."""
        first = self.source.split("\n", 1)[0]
        match = _MODULE_HEADER.match(first)
        if match is None:
            return None
        return match["path"][: -len(".py")].replace("/", ".")

    def code(self) -> str:
        """The source padded so that line numbers in tracebacks are the Markdown file's."""
        return "\n" * (self.line - 1) + self.source


def doc_files(root: Path = REPO_ROOT) -> list[Path]:
    found: set[Path] = set()
    for pattern in DOC_GLOBS:
        found.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def python_blocks(path: Path, root: Path = REPO_ROOT) -> list[Block]:
    """Every Python block of ``path``, in order."""
    rel = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, info = match["fence"], match["info"].lower()
        start = index + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if info in ("python", "py", "python3"):
            skip, error = _directive(lines, index, rel)
            source = textwrap.dedent("\n".join(lines[start:end]))
            blocks.append(Block(rel, start + 1, source, skip, error))
        index = end + 1
    return blocks


def _directive(lines: list[str], fence_index: int, rel: str) -> tuple[str | None, str | None]:
    above = fence_index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0:
        return None, None
    match = _DIRECTIVE.match(lines[above])
    if match is None:
        return None, None
    skip = _SKIP.match(match["body"])
    if skip is None:
        return None, (
            f"{rel}:{above + 1}: unknown snippet directive {match['body']!r}; "
            "the only one is <!-- snippet: skip (reason) -->"
        )
    return skip["reason"].strip(), None


def all_blocks(root: Path = REPO_ROOT) -> list[Block]:
    return [block for path in doc_files(root) for block in python_blocks(path, root)]
