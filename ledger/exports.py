"""Cells of the CSV files finance opens in a spreadsheet.

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is read by spreadsheets as a formula: a customer name or a reason such
as ``=HYPERLINK("http://x","click")`` would run when finance opens the export.
Following OWASP's advice on CSV injection, such a text cell is written with a
leading single quote, which spreadsheets show as plain text. Numbers are never
touched: a charge of ``-25`` stays the number ``-25``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, or a text that no spreadsheet reads as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_cells(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_safe(v) for v in values]


def safe_record(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: spreadsheet_safe(value) for name, value in row.items()}
