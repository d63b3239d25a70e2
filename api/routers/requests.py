"""``/v1/requests``: a support request's life (open, pre-quote, quote, accept or
decline, revise, charge, refer, cancel, dispute, refund or reject), its state
from the requests read model, and its replayed history from the event store."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api import list_schemas as ls
from api import schemas as s
from api.deps import CaughtUp, IdempotencyKey, LedgerDep, allowed, resolve_customer_id
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from ledger.aggregates import RequestStatus
from ledger.errors import UnknownRequestError
from ledger.permissions import Action
from ledger.policy import Category
from ledger.values import Actor

router = APIRouter(prefix="/v1/requests", tags=["requests"])

Changed = s.RequestChangedOut


def _changed(result: object) -> Changed:
    return Changed.model_validate(result)


@router.post("", status_code=201, response_model=Changed, responses=problems(*WRITE))
def open_request(
    body: s.OpenRequestIn,
    actor: Annotated[Actor, Depends(allowed(Action.OPEN_REQUEST))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Priced by its category at opening (price null for complex_modification)."""
    return ModelJSON(
        _changed(
            ledger.open_request(
                resolve_customer_id(ledger, body.customer_id),
                body.category,
                body.channel,
                body.subject,
                from_version=body.from_version,
                to_version=body.to_version,
                third_party=body.third_party,
                actor=actor,
                idempotency_key=key,
            )
        ),
        status_code=201,
    )


@router.get("", response_model=ls.RequestsPage, responses=problems(*READ))
def list_requests(
    actor: Annotated[Actor, Depends(allowed(Action.READ_REQUEST))],
    read_models: CaughtUp,
    status: Annotated[list[RequestStatus] | None, Query(max_length=len(RequestStatus))] = None,
    customer_id: ls.CustomerFilter = None,
    category: Category | None = None,
    cursor: ls.ListCursor = None,
    limit: ls.Limit = ls.DEFAULT_LIMIT,
) -> ModelJSON:
    """Requests newest first (requests read model, honours ``?after=``);
    ``status`` repeatable: any of them."""
    page = read_models.list_requests(
        statuses=[v.value for v in status or ()],
        customer_id=customer_id,
        category=None if category is None else category.value,
        cursor=cursor,
        limit=limit,
    )
    return ModelJSON(ls.RequestsPage.model_validate(page))


@router.get("/{request_id}", response_model=s.RequestOut, responses=problems(*READ))
def get_request(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.READ_REQUEST))],
    read_models: CaughtUp,
) -> ModelJSON:
    """From the requests read model (honours ``?after=``)."""
    row = read_models.request(request_id)
    if row is None:
        raise UnknownRequestError(request_id)
    return ModelJSON(s.RequestOut.model_validate(row))


@router.get("/{request_id}/history", response_model=s.HistoryOut, responses=problems(*READ))
def request_history(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.READ_HISTORY))],
    ledger: LedgerDep,
) -> ModelJSON:
    """Every event, oldest first, with the request's state right after it (event store)."""
    entries = ledger.request_history(request_id)
    return ModelJSON(s.HistoryOut.model_validate({"request_id": request_id, "events": entries}))


@router.post("/{request_id}/pre-quote", response_model=Changed, responses=problems(*WRITE))
def request_pre_quote(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.REQUEST_PRE_QUOTE))],
    ledger: LedgerDep,
    body: s.NoteIn | None = None,
    key: IdempotencyKey = None,
) -> ModelJSON:
    note = body.note if body else None
    return ModelJSON(
        _changed(ledger.request_pre_quote(request_id, note, actor=actor, idempotency_key=key))
    )


@router.post("/{request_id}/quote", response_model=s.QuotedOut, responses=problems(*WRITE))
def quote(
    request_id: UUID,
    body: s.QuoteIn,
    actor: Annotated[Actor, Depends(allowed(Action.QUOTE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """The answer's ``price`` is work price + surcharge: the amount that will be charged."""
    result = ledger.quote(request_id, body.price, body.surcharge, actor=actor, idempotency_key=key)
    return ModelJSON(s.QuotedOut.model_validate(result))


@router.post("/{request_id}/quote/accept", response_model=Changed, responses=problems(*WRITE))
def accept_quote(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.ACCEPT_QUOTE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    return ModelJSON(_changed(ledger.accept_quote(request_id, actor=actor, idempotency_key=key)))


@router.post("/{request_id}/quote/decline", response_model=Changed, responses=problems(*WRITE))
def decline_quote(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.DECLINE_QUOTE))],
    ledger: LedgerDep,
    body: s.OptionalReasonIn | None = None,
    key: IdempotencyKey = None,
) -> ModelJSON:
    reason = body.reason if body else None
    return ModelJSON(
        _changed(ledger.decline_quote(request_id, reason, actor=actor, idempotency_key=key))
    )


@router.post("/{request_id}/price", response_model=Changed, responses=problems(*WRITE))
def revise_price(
    request_id: UUID,
    body: s.RevisePriceIn,
    actor: Annotated[Actor, Depends(allowed(Action.REVISE_PRICE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    return ModelJSON(
        _changed(
            ledger.revise_price(
                request_id, body.price, body.reason, actor=actor, idempotency_key=key
            )
        )
    )


@router.post("/{request_id}/charge", response_model=s.ChargedOut, responses=problems(402, *WRITE))
def charge(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.CHARGE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """AnswerCharged and the debit in one append. 409 reasons come before 402."""
    result = ledger.charge(request_id, actor=actor, idempotency_key=key)
    return ModelJSON(s.ChargedOut.model_validate(result))


@router.post("/{request_id}/referral", response_model=Changed, responses=problems(*WRITE))
def refer(
    request_id: UUID,
    body: s.ReasonIn,
    actor: Annotated[Actor, Depends(allowed(Action.REFER))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    return ModelJSON(
        _changed(ledger.refer(request_id, body.reason, actor=actor, idempotency_key=key))
    )


@router.post("/{request_id}/cancel", response_model=Changed, responses=problems(*WRITE))
def cancel(
    request_id: UUID,
    actor: Annotated[Actor, Depends(allowed(Action.CANCEL))],
    ledger: LedgerDep,
    body: s.OptionalReasonIn | None = None,
    key: IdempotencyKey = None,
) -> ModelJSON:
    reason = body.reason if body else None
    return ModelJSON(_changed(ledger.cancel(request_id, reason, actor=actor, idempotency_key=key)))


@router.post("/{request_id}/dispute", response_model=Changed, responses=problems(*WRITE))
def dispute(
    request_id: UUID,
    body: s.ReasonIn,
    actor: Annotated[Actor, Depends(allowed(Action.DISPUTE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    return ModelJSON(
        _changed(ledger.dispute(request_id, body.reason, actor=actor, idempotency_key=key))
    )


@router.post("/{request_id}/refund", response_model=s.RefundedOut, responses=problems(*WRITE))
def refund(
    request_id: UUID,
    body: s.RefundIn,
    actor: Annotated[Actor, Depends(allowed(Action.RESOLVE_DISPUTE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """Only while a dispute is open; refunds in total never exceed the charge."""
    result = ledger.refund(request_id, body.credits, body.reason, actor=actor, idempotency_key=key)
    return ModelJSON(s.RefundedOut.model_validate(result))


@router.post("/{request_id}/dispute/reject", response_model=Changed, responses=problems(*WRITE))
def reject_dispute(
    request_id: UUID,
    body: s.ReasonIn,
    actor: Annotated[Actor, Depends(allowed(Action.RESOLVE_DISPUTE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    return ModelJSON(
        _changed(ledger.reject_dispute(request_id, body.reason, actor=actor, idempotency_key=key))
    )
