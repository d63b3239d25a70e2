"""``/v1/adjustments``: the large adjustments awaiting four eyes (issue 15):
list them, approve one (applied to the account in the same append) or reject
it with a reason. Proposed by ``POST /v1/accounts/{id}/adjustments``."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api import schemas as s
from api.deps import IdempotencyKey, LedgerDep, allowed
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/adjustments", tags=["adjustments"])


@router.get("", response_model=s.AdjustmentsOut, responses=problems(*READ))
def list_adjustments(
    actor: Annotated[Actor, Depends(allowed(Action.READ_ADJUSTMENTS))],
    ledger: LedgerDep,
    status: Annotated[Literal["proposed", "approved", "rejected"] | None, Query()] = None,
) -> ModelJSON:
    """Oldest first; ``?status=proposed`` for those awaiting a decision."""
    found = ledger.list_adjustments(status)
    return ModelJSON(s.AdjustmentsOut.model_validate({"adjustments": found}))


@router.post(
    "/{adjustment_id}/approve", response_model=s.AdjustmentDecidedOut, responses=problems(*WRITE)
)
def approve_adjustment(
    adjustment_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.DECIDE_ADJUSTMENT))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Another finance key than the proposer's (403 otherwise): the balance
    rule is checked now (409 if it would go below zero)."""
    result = ledger.approve_adjustment(adjustment_id, actor=actor, idempotency_key=key)
    return ModelJSON(s.AdjustmentDecidedOut.model_validate(result))


@router.post(
    "/{adjustment_id}/reject", response_model=s.AdjustmentDecidedOut, responses=problems(*WRITE)
)
def reject_adjustment(
    adjustment_id: UUID,
    body: s.ReasonIn,
    actor: Annotated[Actor, Depends(allowed(Action.DECIDE_ADJUSTMENT))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Another finance key than the proposer's, with a reason."""
    result = ledger.reject_adjustment(adjustment_id, body.reason, actor=actor, idempotency_key=key)
    return ModelJSON(s.AdjustmentDecidedOut.model_validate(result))
