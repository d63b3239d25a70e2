"""The lists' query parameters and pages (API-1.1, "Lists").

Every list answers ``{items, next_cursor}``; the items are the same objects
as the single reads (``GET /v1/accounts/{id}``, ``/v1/requests/{id}``,
``/v1/invoices/{id}``). Bad parameters are refused by FastAPI before the
route runs: 422 naming the parameter (an unknown status or category, a
negative or non-integer ``balance_below``, ``limit`` outside 1 to 500, a
``q`` over 200 characters); a cursor the service did not issue is 422 from
``ledger.projections.cursor``.

Pages are built as every response is, ``Schema.model_validate(value)``:
``RequestsPage.model_validate(page)`` reads a ``Page``'s attributes; the
accounts' items are ``AccountOut.now`` (an account joined with the day).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from api.schemas import AccountOut, InvoiceViewOut, MovementsOut, Out, RequestOut
from ledger.projections import BalanceRow, MovementRow, Page
from ledger.projections.cursor import MAX_CURSOR_CHARS

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_Q = 200
MAX_CREDITS = 2**53

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
ListCursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
        description="the previous page's next_cursor (opaque)",
    ),
]
SearchText = Annotated[
    str | None,
    Query(
        max_length=MAX_Q,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="a prefix of customer_id or a part of name, case-insensitive",
    ),
]
BalanceBelow = Annotated[
    int | None,
    Query(ge=0, le=MAX_CREDITS, description="only accounts whose balance is below this"),
]
CustomerFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


_CURSOR_EXAMPLE = "eyJwIjo3fQ.kXo2"


def _page_examples(item: type[BaseModel], **more: Any) -> ConfigDict:
    """A page of one example item (the item schema's own), for the OpenAPI document."""
    example = {"items": [item.model_json_schema()["examples"][0]], **more}
    return ConfigDict(
        extra="forbid", from_attributes=True, json_schema_extra={"examples": [example]}
    )


class AccountsPage(Out):
    model_config = _page_examples(AccountOut, next_cursor=_CURSOR_EXAMPLE)
    items: list[AccountOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class RequestsPage(Out):
    model_config = _page_examples(RequestOut, next_cursor=_CURSOR_EXAMPLE)
    items: list[RequestOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class InvoicesPage(Out):
    model_config = _page_examples(InvoiceViewOut, next_cursor=None)
    items: list[InvoiceViewOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class MovementsPage(MovementsOut):
    model_config = ConfigDict(
        extra="forbid",
        from_attributes=True,
        json_schema_extra={
            "examples": [{**MovementsOut.model_json_schema()["examples"][0], "next_cursor": None}]
        },
    )
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


def accounts_page(page: Page[BalanceRow], today: date, at: datetime) -> AccountsPage:
    """Each account as ``GET /v1/accounts/{id}`` answers it on ``today``, at ``at``."""
    return AccountsPage.model_validate(
        {
            "items": [AccountOut.now(row, today, at) for row in page.items],
            "next_cursor": page.next_cursor,
        }
    )


def movements_page(page: Page[MovementRow]) -> MovementsPage:
    """A page; ``next_after`` (the older paging, by position) is set exactly
    when ``next_cursor`` is."""
    more = page.next_cursor is not None
    return MovementsPage.model_validate(
        {
            "items": page.items,
            "next_after": page.items[-1].position if more else None,
            "next_cursor": page.next_cursor,
        }
    )
