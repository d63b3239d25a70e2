"""``/v1/accounts``: open, read (now from the balances read model, or ``as_of``
from the event store), movements, invoices, subscription, adjustments."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api import list_schemas as ls
from api import schemas as s
from api.deps import (
    After,
    AuditDep,
    CaughtUp,
    CustomerId,
    IdempotencyKey,
    LedgerDep,
    allowed,
    get_read_models,
)
from api.movements import CSV_RESPONSE, Cursor, Limit, csv_response
from api.responses import ModelJSON
from api.routers import READ, WRITE, problems
from api.timeparams import instant
from ledger.errors import UnknownAccountError
from ledger.permissions import Action
from ledger.projections import ReadQueries
from ledger.values import Actor

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

AsOf = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO 8601 time with offset: the account as it was then, from the event store",
        examples=["2026-03-01T12:00:00Z"],
    ),
]


@router.post("", status_code=201, response_model=s.AccountOpenedOut, responses=problems(*WRITE))
def open_account(
    body: s.OpenAccountIn,
    actor: Annotated[Actor, Depends(allowed(Action.OPEN_ACCOUNT))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    result = ledger.open_account(body.customer_id, body.name, actor=actor, idempotency_key=key)
    return ModelJSON(s.AccountOpenedOut.model_validate(result), status_code=201)


@router.get("", response_model=ls.AccountsPage, responses=problems(*READ))
def list_accounts(
    actor: Annotated[Actor, Depends(allowed(Action.READ_ACCOUNT))],
    ledger: LedgerDep,
    read_models: CaughtUp,
    q: ls.SearchText = None,
    balance_below: ls.BalanceBelow = None,
    cursor: ls.ListCursor = None,
    limit: ls.Limit = ls.DEFAULT_LIMIT,
) -> ModelJSON:
    """Accounts by ``customer_id`` (balances read model, honours ``?after=``):
    ``q`` a prefix of the customer id or a part of the name, case-insensitive."""
    page = read_models.list_accounts(
        q=q or None, balance_below=balance_below, cursor=cursor, limit=limit
    )
    return ModelJSON(ls.accounts_page(page, ledger.today(), ledger.clock()))


@router.get("/{customer_id}", response_model=s.AccountOut, responses=problems(*READ))
def get_account(
    customer_id: CustomerId,
    actor: Annotated[Actor, Depends(allowed(Action.READ_ACCOUNT))],
    ledger: LedgerDep,
    read_models: Annotated[ReadQueries, Depends(get_read_models)],
    as_of: AsOf = None,
    after: After = None,
) -> ModelJSON:
    """Now: from the balances read model (honours ``?after=``). With ``?as_of=``:
    replayed from the event store (``after`` is then not needed)."""
    moment = instant("as_of", as_of)
    if moment is not None:
        return ModelJSON(s.AccountOut.at(ledger.get_account_as_of(customer_id, moment), moment))
    read_models.wait_for(after)
    row = read_models.balance(customer_id)
    if row is None:
        raise UnknownAccountError(customer_id)
    return ModelJSON(s.AccountOut.now(row, ledger.today(), ledger.clock()))


@router.get(
    "/{customer_id}/movements",
    response_model=ls.MovementsPage,
    responses={**problems(*READ), **CSV_RESPONSE},
)
def account_movements(
    customer_id: CustomerId,
    actor: Annotated[Actor, Depends(allowed(Action.READ_ACCOUNT))],
    read_models: CaughtUp,
    page_after: Cursor = 0,
    cursor: ls.ListCursor = None,
    limit: Limit = 100,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ModelJSON | StreamingResponse:
    """The account's credit movements, oldest first (JSON paged by ``cursor``,
    or by the older ``page_after``; or CSV streamed)."""
    if read_models.balance(customer_id) is None:
        raise UnknownAccountError(customer_id)
    if format == "csv":
        return csv_response(read_models.iter_movements(customer_id=customer_id))
    page = read_models.list_movements(customer_id, cursor=cursor, after=page_after, limit=limit)
    return ModelJSON(ls.movements_page(page))


@router.get(
    "/{customer_id}/statement", response_model=s.StatementOut, responses=problems(422, *READ)
)
def account_statement(
    customer_id: CustomerId,
    actor: Annotated[Actor, Depends(allowed(Action.READ_STATEMENT))],
    audit: AuditDep,
    since: AsOf = None,
    until: AsOf = None,
) -> ModelJSON:
    """Opening balance, every movement in ``since`` <= at < ``until``, closing
    balance, the chain head at the time of issue and the statement's digest;
    from the event store. ``ledger verify-statement FILE`` checks it later."""
    statement = audit.statement(customer_id, instant("since", since), instant("until", until))
    return ModelJSON(s.StatementOut.model_validate(statement.to_json()))


@router.post(
    "/{customer_id}/invoices",
    status_code=201,
    response_model=s.InvoiceOut,
    responses=problems(*WRITE),
)
def issue_invoice(
    customer_id: CustomerId,
    body: s.IssueInvoiceIn,
    actor: Annotated[Actor, Depends(allowed(Action.ISSUE_INVOICE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    result = ledger.issue_invoice(
        customer_id,
        package=body.package,
        credits=body.credits,
        amount_usd=body.amount_usd,
        actor=actor,
        idempotency_key=key,
    )
    return ModelJSON(s.InvoiceOut.model_validate(result), status_code=201)


@router.post(
    "/{customer_id}/subscription", response_model=s.SubscriptionOut, responses=problems(*WRITE)
)
def record_subscription(
    customer_id: CustomerId,
    body: s.SubscriptionIn,
    actor: Annotated[Actor, Depends(allowed(Action.RECORD_SUBSCRIPTION))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    result = ledger.record_subscription(
        customer_id, body.valid_from, body.valid_until, actor=actor, idempotency_key=key
    )
    return ModelJSON(s.SubscriptionOut.model_validate(result))


@router.post(
    "/{customer_id}/adjustments",
    response_model=s.BalanceOut,
    responses={
        202: {"model": s.AdjustmentProposedOut, "description": "Proposed: awaits four eyes"},
        **problems(*WRITE),
    },
)
def adjust_balance(
    customer_id: CustomerId,
    body: s.AdjustmentIn,
    actor: Annotated[Actor, Depends(allowed(Action.ADJUST_BALANCE))],
    ledger: LedgerDep,
    key: IdempotencyKey = None,
) -> ModelJSON:
    """200 with the balance; 202 when the size exceeds ``LEDGER_ADJUSTMENT_LIMIT``:
    proposed, applied when another finance key approves it."""
    result = ledger.adjust_balance(
        customer_id, body.credits, body.reason, actor=actor, idempotency_key=key
    )
    if result.status == "proposed":
        return ModelJSON(s.AdjustmentProposedOut.model_validate(result), status_code=202)
    return ModelJSON(s.BalanceOut.model_validate(result))
