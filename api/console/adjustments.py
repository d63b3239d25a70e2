"""Four-eyes adjustments (issue 15) for finance: the proposals waiting for a
second finance key, approved or rejected with a reason on the page; the
decided ones by status. Proposed from an account's page
(``api.console.finance.adjust``), which comes here when an adjustment is
above ``LEDGER_ADJUSTMENT_LIMIT``.

The list is read from the event store by ``Ledger.list_adjustments`` (no
read model), so a page after a write shows it at once."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.web import (
    ConsolePageError,
    allowed_to,
    form_of,
    in_words,
    ledger_of,
    redirect,
    render,
)
from api.problems import status_for
from ledger.aggregates import AdjustmentStatus
from ledger.errors import LedgerError
from ledger.permissions import Action

router = APIRouter()

STATUSES = tuple(s.value for s in AdjustmentStatus)


@router.get("/adjustments", response_class=HTMLResponse)
async def adjustments(
    request: Request,
    status: Annotated[str, Query(max_length=20)] = AdjustmentStatus.PROPOSED.value,
    proposed: UUID | None = None,
) -> Response:
    """The adjustments in ``status``; ``proposed``: the one just proposed."""
    person = allowed_to(request, Action.READ_ADJUSTMENTS)
    if status not in STATUSES:
        status = AdjustmentStatus.PROPOSED.value
    found = await run_in_threadpool(ledger_of(request).list_adjustments, status)
    return render(
        request,
        "adjustments.html",
        person,
        adjustments=found,
        status=status,
        statuses=STATUSES,
        proposed=proposed,
        me=str(person.session.actor),
    )


@router.post("/adjustments/{adjustment_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, adjustment_id: UUID) -> Response:
    person = allowed_to(request, Action.DECIDE_ADJUSTMENT)
    form = await form_of(request, person)
    try:
        decided = await run_in_threadpool(
            lambda: ledger_of(request).approve_adjustment(
                adjustment_id,
                actor=person.session.actor,
                idempotency_key=form.get("idempotency_key") or None,
            )
        )
    except LedgerError as e:
        raise ConsolePageError(status_for(e), "Approval refused", in_words(e).message) from e
    return redirect(f"/console/accounts/{decided.customer_id}?after={decided.position}")


@router.post("/adjustments/{adjustment_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, adjustment_id: UUID) -> Response:
    person = allowed_to(request, Action.DECIDE_ADJUSTMENT)
    form = await form_of(request, person)
    try:
        await run_in_threadpool(
            lambda: ledger_of(request).reject_adjustment(
                adjustment_id,
                form.get("reason", ""),
                actor=person.session.actor,
                idempotency_key=form.get("idempotency_key") or None,
            )
        )
    except LedgerError as e:
        raise ConsolePageError(status_for(e), "Rejection refused", in_words(e).message) from e
    return redirect("/console/adjustments?status=rejected")
