"""``/v1/audit``: every credit movement in order, for finance (JSON paged or
CSV streamed in constant memory), and the verification of the hash chain."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api import schemas as s
from api.deps import AuditDep, CaughtUp, allowed
from api.movements import CSV_RESPONSE, Cursor, Limit, csv_response, movements_page
from api.responses import ModelJSON
from api.routers import READ, problems
from api.timeparams import instant
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Instant = Annotated[
    str | None,
    Query(
        max_length=64, description="ISO 8601 time with offset", examples=["2026-01-01T00:00:00Z"]
    ),
]


@router.get(
    "/movements",
    response_model=s.MovementsOut,
    responses={**problems(*READ), **CSV_RESPONSE},
)
def audit_movements(
    actor: Annotated[Actor, Depends(allowed(Action.READ_AUDIT))],
    read_models: CaughtUp,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Instant = None,
    until: Instant = None,
    page_after: Cursor = 0,
    limit: Limit = 100,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ModelJSON | StreamingResponse:
    """Filtered by customer and time range (``since`` ≤ at < ``until``)."""
    start, end = instant("since", since), instant("until", until)
    if format == "csv":
        return csv_response(
            read_models.iter_movements(customer_id=customer_id, since=start, until=end)
        )
    rows = read_models.movements(
        customer_id=customer_id, since=start, until=end, after_position=page_after, limit=limit
    )
    return ModelJSON(movements_page(rows, limit))


@router.get("/verify", response_model=s.VerificationOut, responses=problems(503))
def verify_ledger(
    actor: Annotated[Actor, Depends(allowed(Action.VERIFY_LEDGER))],
    audit: AuditDep,
) -> ModelJSON:
    """Recompute the hash chain from the event store and compare it with the
    recorded chain, then every snapshot against a replay of its aggregate's
    events: ``ok`` with the head, or the first position where they disagree
    and how (changed, missing, inserted, reordered, unreadable; snapshot: the
    detail names the aggregate and the version). Constant memory."""
    return ModelJSON(s.VerificationOut.model_validate(audit.verify()))
