"""Credit movements out: JSON pages with a ``next_after`` cursor, or CSV streamed.

CSV text cells are made safe to open in a spreadsheet (``ledger.exports``).

The CSV is written line by line from ``ReadQueries.iter_movements`` (which
reads in chunks), so an export of any size runs in constant memory: a
header row, then one line per movement, oldest first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import StreamingResponse

from api.deps import MAX_POSITION
from api.schemas import MovementsOut
from ledger.audit.service import EXPORT_COLUMNS
from ledger.exports import safe_cells
from ledger.projections import MovementRow

MAX_PAGE = 1000
# The same columns as ``ledger export-audit``, so both files read alike.
CSV_COLUMNS = EXPORT_COLUMNS

#: The OpenAPI answer of ``?format=csv``, with an example.
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(CSV_COLUMNS)
                + "\r\n"
                + "7,2026-03-02T11:05:00+00:00,C-1001,charge,-25,55,"
                + "5b0c6f9e-8a51-4a3c-9d2e-2f0f6a1c7d10,,specialist:bo,,1,\r\n",
            }
        }
    }
}

Cursor = Annotated[
    int,
    Query(ge=0, le=MAX_POSITION, description="paging: movements after this position"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]


def movements_page(rows: list[MovementRow], limit: int) -> MovementsOut:
    """A page; ``next_after`` is set when the page is full (there may be more)."""
    next_after = rows[-1].position if rows and len(rows) >= limit else None
    return MovementsOut.model_validate({"items": rows, "next_after": next_after})


def csv_lines(rows: Iterable[MovementRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(safe_cells(values))
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for row in rows:
        yield line(
            (
                row.position,
                row.at.isoformat(),
                row.customer_id,
                row.kind,
                row.amount,
                row.balance_after,
                row.request_id or "",
                row.invoice_id or "",
                row.actor,
                row.reason or "",
                "" if row.price_list_version is None else row.price_list_version,
                "" if row.held is None else row.held,
            )
        )


def csv_response(rows: Iterable[MovementRow]) -> StreamingResponse:
    return StreamingResponse(
        csv_lines(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="movements.csv"'},
    )
