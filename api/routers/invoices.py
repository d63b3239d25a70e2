"""``/v1/invoices``: record a payment (credits added exactly once), void, read."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from api import schemas as s
from api.deps import IdempotencyKey, LedgerDep, allowed
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.get("/{invoice_id}", response_model=s.InvoiceViewOut, responses=problems(*READ))
def get_invoice(
    invoice_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.READ_INVOICE))],
    ledger: LedgerDep,
) -> ModelJSON:
    """An invoice, from the event store."""
    return ModelJSON(s.InvoiceViewOut.model_validate(ledger.get_invoice(invoice_id)))


@router.post(
    "/{invoice_id}/payment", response_model=s.InvoiceSettledOut, responses=problems(*WRITE)
)
def pay_invoice(
    invoice_id: UUID,
    body: s.PayInvoiceIn,
    actor: Annotated[Actor, Depends(allowed(Action.RECORD_PAYMENT))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Emits InvoicePaid and CreditsPurchased in one append; 409 if paid or voided."""
    result = ledger.pay_invoice(invoice_id, body.payment_ref, actor=actor, idempotency_key=key)
    return ModelJSON(s.InvoiceSettledOut.model_validate(result))


@router.post("/{invoice_id}/void", response_model=s.InvoiceSettledOut, responses=problems(*WRITE))
def void_invoice(
    invoice_id: UUID,
    body: s.ReasonIn,
    actor: Annotated[Actor, Depends(allowed(Action.VOID_INVOICE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Emits InvoiceVoided; 409 if already paid or voided."""
    result = ledger.void_invoice(invoice_id, body.reason, actor=actor, idempotency_key=key)
    return ModelJSON(s.InvoiceSettledOut.model_validate(result))
