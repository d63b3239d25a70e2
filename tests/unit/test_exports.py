"""CSV cells a spreadsheet would run as formulas are written as text (OWASP's
CSV-injection advice); numbers stay numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.exports import safe_cells, safe_record, spreadsheet_safe


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x","click")', "=1+2", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_a_text_that_starts_a_formula_is_written_as_text(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Acme Store", "", "C-1001", "finance:cy", "a=b", "2026-01-01"])
def test_other_text_is_unchanged(text: str) -> None:
    assert spreadsheet_safe(text) == text


@pytest.mark.parametrize("number", [-25, 0, 80, Decimal("-1.50")])
def test_numbers_are_never_touched(number: int | Decimal) -> None:
    assert spreadsheet_safe(number) is number


def test_rows_and_records_are_neutralised_cell_by_cell() -> None:
    assert safe_cells(["=1+2", -25, "ok"]) == ["'=1+2", -25, "ok"]
    assert safe_record({"reason": "@x", "amount": -5}) == {"reason": "'@x", "amount": -5}
