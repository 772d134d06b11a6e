"""Spool arguments of each case, as an application would pass them."""

from __future__ import annotations

CASES: dict[str, dict[object, object]] = {
    "plain": {"case": "plain", "a": "x"},
    "int_value": {"case": "int_value", "n": 5},
    "float_value": {"case": "float_value", "n": 1.5},
    "int_key": {"case": "int_key", 1: "a"},
    "str_and_bytes_key": {"case": "str_and_bytes_key", "a": "x", b"a": "y"},
}
