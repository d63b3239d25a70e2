"""Finance opens movement exports in a spreadsheet: a customer's reason that
looks like a formula arrives as text, and the amounts stay numbers."""

from __future__ import annotations

import csv
import io
from uuid import uuid4

from tests.api.conftest import Api

HOSTILE = '=HYPERLINK("http://x","click")'
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _is_number(cell: str) -> bool:
    try:
        int(cell)
    except ValueError:
        return False
    return True


def _as_a_spreadsheet_reads(text: str) -> list[list[str]]:
    """The cells as a spreadsheet sees them; fails on any cell it would run."""
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA) or _is_number(cell), f"formula cell: {cell!r}"
    return rows


def test_a_formula_in_a_reason_is_exported_as_text_and_numbers_stay_numbers(api: Api) -> None:
    customer_id = f"C-{uuid4().hex[:10]}"
    api.ok(api.post("finance", "/v1/accounts", {"customer_id": customer_id, "name": "=1+2"}), 201)
    api.ok(
        api.post(
            "finance", f"/v1/accounts/{customer_id}/adjustments", {"credits": 30, "reason": HOSTILE}
        )
    )
    done = api.ok(
        api.post(
            "finance", f"/v1/accounts/{customer_id}/adjustments", {"credits": -25, "reason": "=1+2"}
        )
    )
    for path in ("/v1/audit/movements", f"/v1/accounts/{customer_id}/movements"):
        answer = api.get(
            "finance",
            path,
            params={"customer_id": customer_id, "format": "csv", "after": done["position"]},
        )
        assert answer.status_code == 200, answer.text
        header, *rows = _as_a_spreadsheet_reads(answer.text)
        reason, amount = header.index("reason"), header.index("amount")
        assert [r[reason] for r in rows] == ["'" + HOSTILE, "'=1+2"]
        assert [int(r[amount]) for r in rows] == [30, -25]
