"""``/v1/reports/summary``: the finance summary, one consistent snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api import schemas as s
from api.deps import CaughtUp, allowed
from api.responses import ModelJSON
from api.routers import READ, problems
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/summary", response_model=s.SummaryOut, responses=problems(*READ))
def summary(
    actor: Annotated[Actor, Depends(allowed(Action.READ_AUDIT))],
    read_models: CaughtUp,
) -> ModelJSON:
    """Sold and received count paid invoices; outstanding = sold - charged +
    refunded + adjusted; liability values outstanding credits first-in first-out."""
    return ModelJSON(s.SummaryOut.model_validate(read_models.summary()))
