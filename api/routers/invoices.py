"""``/v1/invoices``: record a payment (credits added exactly once), void, read."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from api import list_schemas as ls
from api import schemas as s
from api.deps import CaughtUp, IdempotencyKey, LedgerDep, allowed
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from ledger.aggregates import InvoiceStatus
from ledger.permissions import Action
from ledger.values import Actor

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.get("", response_model=ls.InvoicesPage, responses=problems(*READ))
def list_invoices(
    actor: Annotated[Actor, Depends(allowed(Action.READ_INVOICE))],
    read_models: CaughtUp,
    status: InvoiceStatus | None = None,
    customer_id: ls.CustomerFilter = None,
    cursor: ls.ListCursor = None,
    limit: ls.Limit = ls.DEFAULT_LIMIT,
) -> ModelJSON:
    """Invoices newest first (invoices read model, honours ``?after=``)."""
    page = read_models.list_invoices(
        status=None if status is None else status.value,
        customer_id=customer_id,
        cursor=cursor,
        limit=limit,
    )
    return ModelJSON(ls.InvoicesPage.model_validate(page))


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
