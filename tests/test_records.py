"""Readers of appended files ignore a half-written last line."""

from __future__ import annotations

from pathlib import Path

from tests.support.records import complete_lines, read_jsonl


def test_partial_last_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "done.jsonl"
    assert read_jsonl(path) == []
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": "unterminated')
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]
    with open(path, "a") as fh:
        fh.write('"}\n')
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}, {"c": "unterminated"}]


def test_complete_lines_skips_blank_lines_and_the_tail() -> None:
    assert complete_lines("") == []
    assert complete_lines("x\n\ny\nhalf") == ["x", "y"]
    assert complete_lines("spawned uWSGI worker 1\nspawned uWSGI wor") == ["spawned uWSGI worker 1"]
